"""Executing the chapters and assembling the book: one harness for ``make book``, ``make test`` and ``make sync``.

* :func:`execute` runs a chapter's jupytext source with papermill at a scale and seed, into a build folder, with
  ``EFFCOURSE_METRICS`` pointing at a JSON file beside the executed notebook.  An execution is reused only while
  the hash of the chapter source, every ``effcourse`` module, the scale and the seed is unchanged (jupyter-book's own
  cache cannot see edits to the library).
* :func:`build_book` executes every written chapter, stages a source tree of the book with the executed
  notebooks in place of the sources, and runs ``jupyter-book build -n -W --keep-going`` on it (execution off).
* :func:`sync` rewrites each ``.ipynb`` from its ``.py`` source, keeping outputs only in cells marked
  ``# NBVAL_CHECK_OUTPUT`` (filled from a ``smoke`` execution): those are what nbval compares.

Command line: ``python -m effcourse.book.notebooks {execute,book,sync,check} ...``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Chapter", "build_book", "chapters", "check_pair", "execute", "stage_book", "sync", "write_report"]

ROOT = Path(__file__).resolve().parents[2]
NBVAL_MARK = "# NBVAL_CHECK_OUTPUT"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


@dataclass(frozen=True)
class Chapter:
    """A chapter folder ``chapters/NN-name``: written when ``name.py`` exists, else a placeholder ``name.md``."""

    folder: Path

    @property
    def id(self) -> str:
        return self.folder.name

    @property
    def name(self) -> str:
        return self.folder.name.split("-", 1)[1]

    @property
    def source(self) -> Path:
        return self.folder / f"{self.name}.py"

    @property
    def notebook(self) -> Path:
        return self.folder / f"{self.name}.ipynb"

    @property
    def placeholder(self) -> Path:
        return self.folder / f"{self.name}.md"

    @property
    def written(self) -> bool:
        return self.source.exists()


def chapters(root: Path = ROOT, written_only: bool = False) -> list[Chapter]:
    """Chapter folders in order; ``written_only`` keeps those with a notebook source."""
    out = [Chapter(p) for p in sorted((root / "chapters").glob("[0-9][0-9]-*")) if p.is_dir()]
    return [c for c in out if c.written] if written_only else out


def find_chapter(key: str, root: Path = ROOT) -> Chapter:
    for c in chapters(root):
        if key in (c.id, c.name):
            return c
    raise ValueError(f"no chapter {key!r}; chapters: {[c.id for c in chapters(root)]}")


def _library_hash(root: Path = ROOT) -> str:
    h = hashlib.sha256()
    for p in sorted((root / "effcourse").rglob("*.py")):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def execution_key(ch: Chapter, scale: str, seed: int, root: Path = ROOT) -> str:
    """What an execution depends on: the chapter source, the library, scale and seed."""
    h = hashlib.sha256()
    h.update(ch.source.read_bytes())
    h.update(_library_hash(root).encode())
    h.update(f"{scale}/{seed}".encode())
    return h.hexdigest()


def read_source(ch: Chapter):
    import jupytext

    return jupytext.read(ch.source, fmt="py:percent")


def execute(ch: Chapter, scale: str, seed: int = 0, out_dir: Path | None = None, force: bool = False,
            device: str = "auto", timeout: int | None = None, log_output: bool = False) -> tuple[Path, Path]:
    """Execute chapter ``ch`` at ``scale`` with papermill; return (executed notebook, metrics JSON).

    Raises ``papermill.PapermillExecutionError`` when a cell fails (a failed claim is such a failure).
    """
    import papermill as pm

    from ..core.harness import METRICS_ENV, resolve_scale

    scale = resolve_scale(scale)
    out_dir = Path(out_dir or ROOT / "_build" / "executed" / scale) / ch.id
    out_dir.mkdir(parents=True, exist_ok=True)
    nb_out = out_dir / f"{ch.name}.ipynb"
    metrics = out_dir / "metrics.json"
    stamp = out_dir / "key.txt"
    key = execution_key(ch, scale, seed)
    if not force and nb_out.exists() and metrics.exists() and stamp.exists() and stamp.read_text() == key:
        return nb_out, metrics
    for p in (stamp, metrics):
        p.unlink(missing_ok=True)
    import jupytext

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"{ch.name}.ipynb"
        jupytext.write(read_source(ch), src, fmt="ipynb")
        env_before = {k: os.environ.get(k) for k in (METRICS_ENV, "TQDM_DISABLE", "MPLBACKEND")}
        os.environ[METRICS_ENV] = str(metrics)
        os.environ["TQDM_DISABLE"] = "1"  # progress bars help a reader in Jupyter, not a rendered page or a log
        os.environ["MPLBACKEND"] = INLINE_BACKEND  # figures go into the notebook even when the caller is headless
        try:
            pm.execute_notebook(str(src), str(nb_out), parameters={"SCALE": scale, "SEED": seed, "DEVICE": device},
                                cwd=str(ch.folder), kernel_name="python3", progress_bar=False,
                                log_output=log_output, execution_timeout=timeout)
        finally:
            for k, v in env_before.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    stamp.write_text(key)
    return nb_out, metrics


def stage_book(executed: dict[str, Path], dest: Path, root: Path = ROOT) -> Path:
    """A book source tree in ``dest``: config, toc, front matter, placeholders and the executed notebooks."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / name, dest / name)
    shutil.copytree(root / "book", dest / "book")
    for ch in chapters(root):
        target = dest / "chapters" / ch.id
        target.mkdir(parents=True)
        if ch.id in executed:
            _copy_for_book(executed[ch.id], target / ch.notebook.name)
            for extra in ch.folder.iterdir():  # figures or data files a chapter ships beside its source
                if extra.suffix in (".png", ".svg", ".jpg", ".csv") and extra.is_file():
                    shutil.copy2(extra, target / extra.name)
        elif ch.placeholder.exists():
            shutil.copy2(ch.placeholder, target / ch.placeholder.name)
        else:
            raise FileNotFoundError(f"{ch.folder} has neither {ch.source.name} nor {ch.placeholder.name}")
    if (dest / REPORT_PAGE).exists():
        write_report(executed, dest, root)
    return dest


REPORT_PAGE = Path("book") / "report.md"


def _parts(root: Path) -> dict[str, str]:
    """Page (``chapters/08-avagrad/avagrad``) -> caption of the ``_toc.yml`` part that lists it."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    return {c["file"]: p.get("caption", "") for p in toc.get("parts", []) for c in p.get("chapters", [])}


def _title(nb_path: Path) -> str:
    import nbformat

    for c in nbformat.read(nb_path, as_version=4).cells:
        if c.cell_type == "markdown":
            for line in c.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return nb_path.stem


def write_report(executed: dict[str, Path], dest: Path, root: Path = ROOT) -> Path:
    """Fill the staged ``book/report.md`` from the metrics recorded beside each executed notebook.

    Also writes ``book/report.json`` (every record) next to it, offered as a download on the page.
    """
    from . import report

    parts = _parts(root)
    entries, records = [], {}
    for ch in chapters(root, written_only=True):
        page = f"chapters/{ch.id}/{ch.name}"
        nb = executed.get(ch.id)
        metrics = nb.parent / "metrics.json" if nb is not None else None
        rec = report.load(metrics) if metrics is not None and metrics.exists() else None
        if rec is not None:
            records[ch.id] = rec
        title = _title(nb) if nb is not None else ch.name
        entries.append(report.ChapterEntry(ch.id, page, title, parts.get(page, ""), rec))
    (dest / "book" / "report.json").write_text(json.dumps(records, indent=1))
    body = report.render(entries, page_dir="book")
    body += "\nEvery record of this build, as JSON: {download}`report.json <report.json>`.\n"
    page = dest / REPORT_PAGE
    page.write_text(report.fill(page.read_text(), body))
    return page


def _copy_for_book(src: Path, dst: Path) -> None:
    """Copy an executed notebook for the site: papermill's injected-parameters cell hidden (the parameters cell
    stays) and progress-bar widgets dropped.

    tqdm's notebook bars ignore ``TQDM_DISABLE``; a static page cannot show them, and their state would make the
    page load the ipywidgets scripts from a CDN.
    """
    import nbformat

    nb = nbformat.read(src, as_version=4)
    for c in nb.cells:
        tags = c.metadata.get("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            c.metadata["tags"] = [*tags, "remove-cell"]
        if c.cell_type == "code":
            c.outputs = [o for o in c.outputs if WIDGET_VIEW not in o.get("data", {})]
    nb.metadata.pop("widgets", None)
    nbformat.write(nb, dst)


def jupyter_book_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    return [str(exe)] if exe.exists() else ["jupyter-book"]


def build_book(scale: str = "book", seed: int = 0, root: Path = ROOT, out: Path | None = None,
               executed: dict[str, Path] | None = None, force: bool = False, progress: bool = True) -> Path:
    """Execute every written chapter at ``scale`` (reusing unchanged executions) and build the HTML site.

    Returns the site folder (``.../html``). Sphinx warnings are errors (``-n -W --keep-going``).
    """
    out = Path(out or root / "_build" / ("site" if scale == "book" else f"site-{scale}"))
    if executed is None:
        executed = {}
        for ch in chapters(root, written_only=True):
            if progress:
                print(f"[effcourse] executing {ch.id} at scale {scale!r} ...", flush=True)
            nb, _ = execute(ch, scale, seed, out_dir=root / "_build" / "executed" / scale, force=force)
            executed[ch.id] = nb
    stage = stage_book(executed, out.parent / f"{out.name}-src", root)
    cmd = jupyter_book_cmd() + ["build", str(stage), "--path-output", str(out), "-n", "-W", "--keep-going"]
    if progress:
        print("[effcourse] " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, capture_output=not progress, text=True)
    if proc.returncode != 0:
        detail = "" if progress else f"\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        raise RuntimeError(f"jupyter-book build failed (exit {proc.returncode}){detail}")
    site = out / "_build" / "html"
    if progress:
        print(f"[effcourse] the book is at {site / 'index.html'}", flush=True)
    return site


# ---------------------------------------------------------------------------------------------------- pairs
def _marked(cell) -> bool:
    return cell.cell_type == "code" and NBVAL_MARK in cell.source


def sync(ch: Chapter, seed: int = 0) -> Path:
    """Rewrite ``ch.notebook`` from ``ch.source``; marked cells keep outputs from a fresh ``smoke`` execution."""
    import jupytext
    import nbformat

    nb = read_source(ch)
    marked = [c for c in nb.cells if _marked(c)]
    if marked:
        with tempfile.TemporaryDirectory() as tmp:
            executed, _ = execute(ch, "smoke", seed, out_dir=Path(tmp), force=True)
            ran = nbformat.read(executed, as_version=4)
            by_source = {c.source: c for c in ran.cells if _marked(c)}
            for c in marked:
                done = by_source.get(c.source)
                if done is None:
                    raise RuntimeError(f"{ch.id}: marked cell not found in the execution:\n{c.source[:200]}")
                c.outputs = [o for o in done.outputs if o.get("output_type") != "display_data"]
                c.execution_count = done.execution_count
    for c in nb.cells:
        if c.cell_type == "code" and not _marked(c):
            c.outputs, c.execution_count = [], None
    nb.metadata.setdefault("kernelspec", {"display_name": "Python 3", "language": "python", "name": "python3"})
    jupytext.write(nb, ch.notebook, fmt="ipynb")
    return ch.notebook


def check_pair(ch: Chapter) -> list[str]:
    """Problems with a chapter's pair: cells that differ, or outputs outside marked cells (empty list: fine)."""
    import nbformat

    problems = []
    if not ch.notebook.exists():
        return [f"{ch.notebook} is missing (run `make sync`)"]
    src = read_source(ch)
    nb = nbformat.read(ch.notebook, as_version=4)
    a = [(c.cell_type, c.source.strip()) for c in src.cells]
    b = [(c.cell_type, c.source.strip()) for c in nb.cells]
    if a != b:
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        problems.append(f"{ch.id}: .py and .ipynb differ (first at cell {first}; {len(a)} vs {len(b)} cells)")
    for i, c in enumerate(nb.cells):
        if c.cell_type == "code" and c.get("outputs") and not _marked(c):
            problems.append(f"{ch.id}: cell {i} has outputs but is not marked {NBVAL_MARK!r}")
        if _marked(c) and not c.get("outputs"):
            problems.append(f"{ch.id}: marked cell {i} has no stored output to compare")
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m effcourse.book.notebooks", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("execute", help="execute chapters with papermill")
    e.add_argument("chapters", nargs="*", help="chapter ids or names (default: all written)")
    e.add_argument("--scale", default="book")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--force", action="store_true")
    b = sub.add_parser("book", help="execute every chapter and build the HTML book")
    b.add_argument("--scale", default="book")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--force", action="store_true")
    s = sub.add_parser("sync", help="rewrite each .ipynb from its .py source")
    s.add_argument("chapters", nargs="*")
    sub.add_parser("check", help="check that every pair is in sync")
    args = ap.parse_args(argv)

    def pick(keys):
        return [find_chapter(k) for k in keys] if keys else chapters(written_only=True)

    if args.cmd == "execute":
        for ch in pick(args.chapters):
            nb, m = execute(ch, args.scale, args.seed, force=args.force, log_output=True)
            rec = json.loads(m.read_text())
            held = sum(c["held"] for c in rec["claims"])
            print(f"{ch.id}: {held}/{len(rec['claims'])} claims held -> {nb}")
    elif args.cmd == "book":
        build_book(args.scale, args.seed, force=args.force)
    elif args.cmd == "sync":
        for ch in pick(args.chapters):
            print(f"synced {sync(ch)}")
    elif args.cmd == "check":
        problems = [p for ch in chapters(written_only=True) for p in check_pair(ch)]
        print("\n".join(problems) or "all pairs in sync")
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
