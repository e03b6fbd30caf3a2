"""Executing the chapters and assembling the book: one harness for ``make book``, ``make test`` and ``make sync``.

* :func:`execute` runs a chapter's jupytext source with papermill at a scale and seed, into a build folder, with
  ``EFFCOURSE_METRICS`` pointing at a JSON file beside the executed notebook.  An execution is reused only while
  the hash of the chapter source, every ``effcourse`` module, the scale and the seed is unchanged (jupyter-book's own
  cache cannot see edits to the library).
* :func:`build_book` executes every written chapter, stages a source tree of the book with the executed
  notebooks in place of the sources, and runs ``jupyter-book build -n -W --keep-going`` on it (execution off).
* :func:`sync` rewrites each ``.ipynb`` from its ``.py`` source, keeping outputs only in cells marked
  ``# NBVAL_CHECK_OUTPUT`` (filled from a ``smoke`` execution): those are what nbval compares
  (:func:`marked_output_differences`, on the suite's one smoke execution).

Command line: ``python -m effcourse.book.notebooks {execute,book,sync,check} ...``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Chapter", "ChapterFailed", "Execution", "build_book", "chapter_dependencies", "chapters", "check_pair",
           "execute", "execution_key", "stage_book", "sync", "write_report"]

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


# ---------------------------------------------------------------------------------------------------- execution
KEY_PACKAGES = ("torch", "numpy", "cvxpy", "cvxpylayers", "diffcp", "transformers")
_IMPORT = re.compile(r"^\s*(?:from\s+(\.+\w*|effcourse[\w.]*)\s+import|import\s+(effcourse[\w.]*))", re.M)


class ChapterFailed(RuntimeError):
    """A chapter's execution stopped in a cell; the message names the executed notebook and the cell."""


class Execution(tuple):
    """``(notebook, metrics)`` of one execution, with ``reused`` telling whether a cached run was taken."""

    def __new__(cls, notebook: Path, metrics: Path, reused: bool):
        self = super().__new__(cls, (notebook, metrics))
        self.notebook, self.metrics, self.reused = notebook, metrics, reused
        return self


def _subpackages_imported(text: str, here: str | None) -> set[str]:
    """The ``effcourse`` subpackages named by the imports in ``text`` (``here``: the importing subpackage)."""
    found = set()
    for rel, absolute in _IMPORT.findall(text):
        mod = rel or absolute
        if mod.startswith("."):
            dots = len(mod) - len(mod.lstrip("."))
            rest = mod.lstrip(".")
            if dots == 1 and here:
                found.add(here)
            elif dots == 2 and rest:
                found.add(rest.split(".")[0])
        else:
            parts = mod.split(".")
            if len(parts) > 1:
                found.add(parts[1])
            else:  # ``from effcourse import X``: the top-level package re-exports core
                found.add("core")
    return found


def chapter_dependencies(ch: Chapter, root: Path = ROOT) -> list[Path]:
    """The library files an execution of ``ch`` can depend on: ``effcourse/__init__.py``, ``core`` and every
    subpackage reachable by imports from the chapter source (its own subpackage, and whatever that imports)."""
    lib = root / "effcourse"
    todo = _subpackages_imported(ch.source.read_text(), None) | {"core"}
    seen: set[str] = set()
    while todo:
        pkg = todo.pop()
        if pkg in seen or not (lib / pkg).is_dir():
            continue
        seen.add(pkg)
        for f in (lib / pkg).rglob("*.py"):
            todo |= _subpackages_imported(f.read_text(), pkg) - seen
    files = [lib / "__init__.py"] + [f for pkg in sorted(seen) for f in sorted((lib / pkg).rglob("*.py"))]
    return [f for f in files if f.exists()]


def _versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in KEY_PACKAGES:
        try:
            out.append(f"{name}={version(name)}")
        except PackageNotFoundError:
            out.append(f"{name}=absent")
    return ";".join(out)


def _code_of(ch: Chapter) -> str:
    """The code cells of the chapter source: what an execution depends on (Markdown does not change a result)."""
    return "\n\0".join(c.source for c in read_source(ch).cells if c.cell_type == "code")


def execution_key(ch: Chapter, scale: str, seed: int, root: Path = ROOT, *, threads: int = 1,
                  device: str = "auto", claims: str = "assert") -> str:
    """What an execution's results depend on: the chapter's code cells, the library files it can import, scale,
    seed, device, thread count, claim mode, and the installed versions of the numerical stack."""
    h = hashlib.sha256()
    h.update(_code_of(ch).encode())
    for f in chapter_dependencies(ch, root):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    h.update(f"{scale}/{seed}/{device}/{threads}/{claims}/{_versions()}".encode())
    return h.hexdigest()


def cores() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_threads() -> int:
    """``$EFFCOURSE_THREADS``, else :func:`cores`."""
    from ..core.harness import resolve_threads

    env = os.environ.get("EFFCOURSE_THREADS")
    return resolve_threads(env) if env else cores()


def read_source(ch: Chapter):
    import jupytext

    return jupytext.read(ch.source, fmt="py:percent")


def _refresh_markdown(executed: Path, ch: Chapter) -> None:
    """Put the source's current Markdown into a reused execution (its code cells are unchanged by construction)."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    src = read_source(ch).cells
    ran = [c for c in nb.cells if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", [])]
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    code = iter(ran)
    cells = []
    for c in src:
        if c.cell_type == "code":
            done = next(code)
            cells.append(done)
            if "parameters" in c.metadata.get("tags", []):
                cells += injected
        else:
            cells.append(nbformat.v4.new_markdown_cell(c.source, metadata=c.metadata))
    nb.cells = cells
    nbformat.write(nb, executed)


def _kernel_env(threads: int, metrics: Path, claims: str) -> dict[str, str]:
    from ..core.harness import CLAIMS_ENV, METRICS_ENV, THREADS_ENV

    n = str(threads)
    return {METRICS_ENV: str(metrics), THREADS_ENV: n, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n,
            CLAIMS_ENV: claims,
            "TQDM_DISABLE": "1",  # progress bars help a reader in Jupyter, not a rendered page or a log
            "MPLBACKEND": INLINE_BACKEND}  # figures go into the notebook even when the caller is headless


class CellProgress:
    """One line per executed code cell: chapter, cell k of n, time since the start, the cell's own time, section.

    Passed to papermill as nbclient's ``on_cell_start`` / ``on_cell_executed`` hooks, so a long chapter is never a
    silent hour: ``  04-scq  cell 17/42  0:02:31  +12.4 s  3. The scalable relaxation``.
    """

    def __init__(self, chapter_id: str, code_cells: int, write=print) -> None:
        self.chapter_id, self.total, self.write = chapter_id, code_cells, write
        self.done, self.section = 0, ""
        self.t0 = self.t_cell = time.perf_counter()

    def on_cell_start(self, cell, cell_index: int, **_) -> None:
        if cell.cell_type == "markdown":
            heads = [line[3:].strip() for line in cell.source.splitlines() if line.startswith("## ")]
            self.section = heads[-1] if heads else self.section
        self.t_cell = time.perf_counter()

    def on_cell_executed(self, cell, cell_index: int, **_) -> None:
        self.done += 1
        now = time.perf_counter()
        elapsed = int(now - self.t0)
        clock = f"{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}"
        self.write(f"  {self.chapter_id}  cell {self.done}/{self.total}  {clock}  +{now - self.t_cell:.1f} s  "
                   f"{self.section}".rstrip())

    def hooks(self) -> dict[str, Any]:
        return {"on_cell_start": self.on_cell_start, "on_cell_executed": self.on_cell_executed}


def execute(ch: Chapter, scale: str | None = None, seed: int = 0, out_dir: Path | None = None, force: bool = False,
            device: str = "auto", timeout: int | None = None, log_output: bool = False, threads: int | None = None,
            claims: str | None = None, progress: bool = False) -> Execution:
    """Execute chapter ``ch`` at ``scale`` with papermill; return ``(executed notebook, metrics JSON)``.

    The kernel runs with ``threads`` torch/BLAS threads (default :func:`default_threads`).  A previous execution
    in ``out_dir`` is reused (``.reused`` is then True) while :func:`execution_key` is unchanged; Markdown edits
    alone are copied in without executing.  ``claims="report"`` records failed claims without stopping (default:
    ``$EFFCOURSE_CLAIMS``, else ``"assert"``).  ``progress`` prints a line per executed cell (:class:`CellProgress`).
    Raises :class:`ChapterFailed` naming the executed notebook and the failing cell.
    """
    import papermill as pm

    from ..core.harness import CLAIM_MODES, CLAIMS_ENV, resolve_scale, resolve_threads

    scale = resolve_scale(scale)
    claims = claims or os.environ.get(CLAIMS_ENV) or "assert"
    threads = default_threads() if threads is None else resolve_threads(threads)
    if claims not in CLAIM_MODES:
        raise ValueError(f"claims must be one of {CLAIM_MODES}; got {claims!r}")
    # absolute: the kernel runs in the chapter's folder and writes the metrics file by this path
    out_dir = Path(out_dir or ROOT / "_build" / "executed" / scale).resolve() / ch.id
    out_dir.mkdir(parents=True, exist_ok=True)
    nb_out = out_dir / f"{ch.name}.ipynb"
    metrics = out_dir / "metrics.json"
    stamp = out_dir / "key.txt"
    key = execution_key(ch, scale, seed, threads=threads, device=device, claims=claims)
    if not force and nb_out.exists() and metrics.exists() and stamp.exists() and stamp.read_text() == key:
        _refresh_markdown(nb_out, ch)
        return Execution(nb_out, metrics, True)
    for p in (stamp, metrics):
        p.unlink(missing_ok=True)
    import jupytext

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"{ch.name}.ipynb"
        nb = read_source(ch)
        jupytext.write(nb, src, fmt="ipynb")
        # +1: papermill injects a cell with the parameters
        hooks = CellProgress(ch.id, 1 + sum(c.cell_type == "code" for c in nb.cells),
                             lambda s: print(s, flush=True)).hooks() if progress else {}
        env = _kernel_env(threads, metrics, claims)
        env_before = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            pm.execute_notebook(str(src), str(nb_out), parameters={"SCALE": scale, "SEED": seed, "DEVICE": device},
                                cwd=str(ch.folder), kernel_name="python3", progress_bar=False,
                                log_output=log_output, execution_timeout=timeout,
                                # The kernel's own log is noise here: its TCP-without-encryption warning is for remote
                                # kernels, and on Ctrl-C it logs a ZMQError traceback from its closed sockets.  Cell
                                # errors still reach us through papermill.
                                extra_arguments=["--IPKernelApp.log_level=CRITICAL"], **hooks)
        except pm.PapermillExecutionError as err:
            raise ChapterFailed(f"{ch.id} failed at scale {scale!r}, seed {seed}, in cell [{err.exec_count}] "
                                f"(cell {err.cell_index} of the notebook): {err.ename}: {err.evalue}\n"
                                f"  open the executed notebook: {nb_out}") from None
        finally:
            for k, v in env_before.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    rec = json.loads(metrics.read_text())
    rec["execution"] = {"seconds": round(time.perf_counter() - t_start, 1), "threads": threads, **git_commit()}
    metrics.write_text(json.dumps(rec, indent=1))
    stamp.write_text(key)
    return Execution(nb_out, metrics, False)


def _execute_paths(chapter_id: str, root: str, kwargs: dict[str, Any]) -> tuple[Path, Path, bool]:
    ex = execute(find_chapter(chapter_id, Path(root)), **kwargs)
    return ex.notebook, ex.metrics, ex.reused  # an Execution does not pickle: its fields do


def execute_side_by_side(ids: list[str], workers: int | None = None, root: Path = ROOT, **kwargs: Any) -> dict:
    """Start :func:`execute` of each chapter of ``ids``, ``workers`` at a time (default :func:`cores`), in fresh
    processes (each sets its own kernel environment); return ``{chapter id: future}``.

    A future's result is an :class:`Execution`'s ``(notebook, metrics, reused)``; a failed chapter's future raises
    its :class:`ChapterFailed`.  With ``threads=1`` (the suite's setting) two chapters on two cores take about half
    the time of one after the other.  The pool shuts down once every chapter is done.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    workers = cores() if workers is None else workers
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int; got {workers!r}")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    futures = {i: pool.submit(_execute_paths, i, str(root), kwargs) for i in ids}
    pool.shutdown(wait=False)  # queued chapters still run; the workers exit after the last
    return futures


def git_commit(root: Path = ROOT) -> dict[str, Any]:
    """``{"commit": sha, "dirty": bool}`` of the checkout at ``root`` (``commit`` None outside a git checkout)."""
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip() != ""
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": sha, "dirty": dirty}


def _summary_row(ch: Chapter, ex: Execution) -> dict[str, Any]:
    rec = json.loads(ex.metrics.read_text())
    asserted = [c for c in rec["claims"] if c.get("asserted", True)]
    return {"chapter": ch.id, "how": "reused" if ex.reused else "executed",
            "seconds": rec.get("execution", {}).get("seconds"),  # stamped by execute(), reused or not
            "held": sum(bool(c["held"]) for c in asserted), "asserted": len(asserted)}


def chapter_times_table(rows: list[dict[str, Any]]) -> str:
    """The closing table of ``make book``: each chapter's execution time and asserted claims held."""
    lines = [f"{'chapter':<32}{'run':>10}{'time':>10}{'claims held':>14}"]
    for r in rows:
        secs = "-" if r["seconds"] is None else f"{r['seconds']:.0f} s"
        lines.append(f"{r['chapter']:<32}{r['how']:>10}{secs:>10}{r['held']:>8}/{r['asserted']:<5}")
    total = sum(r["seconds"] or 0 for r in rows if r["how"] == "executed")
    lines.append(f"{'total, chapters run now':<32}{'':>10}{total:>8.0f} s")
    return "\n".join(lines)


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
    rates_file = root / "book" / "hold-rates.json"
    rates = json.loads(rates_file.read_text()) if rates_file.exists() else None
    body = report.render(entries, page_dir="book", rates=rates)
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
               executed: dict[str, Path] | None = None, force: bool = False, progress: bool = True,
               device: str = "auto", threads: int | None = None, cell_progress: bool = False) -> Path:
    """Execute every written chapter at ``scale`` (reusing unchanged executions) and build the HTML site.

    Returns the site folder (``.../html``). Sphinx warnings are errors (``-n -W --keep-going``).
    """
    out = Path(out or root / "_build" / ("site" if scale == "book" else f"site-{scale}"))
    if executed is None:
        threads = default_threads() if threads is None else threads
        executed, summary = {}, []
        written = chapters(root, written_only=True)
        for i, ch in enumerate(written, 1):
            if progress:
                print(f"[effcourse {i}/{len(written)}] {ch.id} at scale {scale!r}, seed {seed}, {threads} threads ...",
                      flush=True)
            t0 = time.perf_counter()
            ex = execute(ch, scale, seed, out_dir=root / "_build" / "executed" / scale, force=force, device=device,
                         threads=threads, progress=progress and cell_progress)
            if progress:
                how = "reused (unchanged)" if ex.reused else f"executed in {time.perf_counter() - t0:.0f} s"
                print(f"[effcourse {i}/{len(written)}] {ch.id}: {how}", flush=True)
                summary.append(_summary_row(ch, ex))
            executed[ch.id] = ex.notebook
        if progress:
            print(chapter_times_table(summary), flush=True)
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


def _stable_ids(nb, old_path: Path) -> None:
    """Give ``nb``'s cells the ids of the same cells in the existing pair, so a diff shows only what was edited.

    The old and new cell lists are aligned (difflib): an unchanged cell keeps its id, an edited cell keeps the id
    of the cell it replaced (same type, same place in the alignment), and a new cell gets an id derived from its
    source, never a random one.
    """
    import difflib

    import nbformat

    old = nbformat.read(old_path, as_version=4).cells if old_path.exists() else []
    a = [(c.cell_type, c.source) for c in old]
    b = [(c.cell_type, c.source) for c in nb.cells]
    chosen: dict[int, str] = {}
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal" or tag == "replace":
            for i, j in zip(range(i1, i2), range(j1, j2)):
                if old[i].cell_type == nb.cells[j].cell_type and old[i].get("id"):
                    chosen[j] = old[i].id
    taken = set(chosen.values())
    for j, c in enumerate(nb.cells):
        if j not in chosen:
            base = hashlib.sha1(f"{c.cell_type}:{c.source}".encode()).hexdigest()[:8]
            k = 0
            while f"{base}{k or ''}" in taken:
                k += 1
            chosen[j] = f"{base}{k or ''}"
            taken.add(chosen[j])
    for j, c in enumerate(nb.cells):
        c["id"] = chosen[j]


def sync(ch: Chapter, seed: int = 0, threads: int = 1) -> tuple[Path, str]:
    """Rewrite ``ch.notebook`` from ``ch.source``; marked cells keep outputs from a ``smoke`` execution.

    The source's setup cell is rewritten first (:mod:`effcourse.book.setup_cell`).

    The execution is reused while the chapter's code and library are unchanged (a Markdown edit executes
    nothing), and cell ids stay stable.  Returns the notebook and what happened.
    """
    import jupytext
    import nbformat

    from .setup_cell import apply

    apply(ch.source, ch.id)  # the setup cell follows _config.yml's repository and the package version
    nb = read_source(ch)
    marked = [c for c in nb.cells if _marked(c)]
    how = "no marked cells, nothing executed"
    if marked:
        ex = execute(ch, "smoke", seed, out_dir=ROOT / "_build" / "executed" / "smoke-sync", threads=threads)
        how = "smoke execution reused" if ex.reused else "executed at smoke"
        ran = nbformat.read(ex.notebook, as_version=4)
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
    before = ch.notebook.read_bytes() if ch.notebook.exists() else None
    nb = nbformat.reads(jupytext.writes(nb, fmt="ipynb"), as_version=4)
    _stable_ids(nb, ch.notebook)
    nbformat.write(nb, ch.notebook)
    changed = before != ch.notebook.read_bytes()
    return ch.notebook, ("updated; " if changed else "unchanged; ") + how


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


# nbval's comparison, without nbval's own execution: what it skips (images too, as without --nbdime)
NBVAL_SKIP = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
              "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")


def _flatten_outputs(outputs) -> dict[str, list]:
    from nbval.plugin import coalesce_streams, transform_streams_for_comparison

    flat: dict[str, list] = {}
    for out in transform_streams_for_comparison(coalesce_streams(outputs)):
        for key, value in out.items():
            if key in NBVAL_SKIP:
                continue
            items = value.items() if key == "data" else [(key, value)]
            for k, v in items:
                if k not in NBVAL_SKIP:
                    flat.setdefault(k, []).append(v)
    return flat


def marked_output_differences(committed: Path, executed: Path) -> list[str]:
    """Where the marked cells of an execution differ from the outputs stored in the committed ``.ipynb``.

    The comparison is nbval's (``--nbval-lax``: marked cells only; streams coalesced; metadata, counts and images
    skipped; every other output field compared exactly), applied to an execution the suite has already made, so a
    chapter is executed once for both its baseline metrics and its stored outputs.  Cells are matched by source
    (papermill's injected parameters cell shifts the positions).
    """
    import copy

    import nbformat

    ran = {c.source: c for c in nbformat.read(executed, as_version=4).cells if _marked(c)}
    problems = []
    for i, cell in enumerate(nbformat.read(committed, as_version=4).cells):
        if not _marked(cell):
            continue
        done = ran.get(cell.source)
        if done is None:
            problems.append(f"cell {i}: not in the execution (is the pair in sync?)")
            continue
        # what `sync` stores: display_data (figures, rich tables) is shown, not compared
        test = _flatten_outputs([copy.deepcopy(o) for o in done.outputs if o.get("output_type") != "display_data"])
        ref = _flatten_outputs([copy.deepcopy(o) for o in cell.outputs])
        if set(test) != set(ref):
            problems.append(f"cell {i}: output fields {sorted(test)} vs stored {sorted(ref)}")
            continue
        for key in ref:
            if test[key] != ref[key]:
                got, want = "\n".join(map(str, test[key])), "\n".join(map(str, ref[key]))
                problems.append(f"cell {i} ({key}):\n--- stored\n{want[:1500]}\n+++ this run\n{got[:1500]}")
                break
    return problems


def _env_default(name: str, fallback):
    v = os.environ.get(name)
    return v if v not in (None, "") else fallback


def _parser() -> argparse.ArgumentParser:
    from ..core.config import SCALES

    ap = argparse.ArgumentParser(prog="python -m effcourse.book.notebooks", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{execute,book,seeds,sync,check}")

    def run_options(p, scales=SCALES, seed=True):
        what = {"smoke": "smoke (seconds)", "book": "book (minutes on 2 CPU cores)",
                "full": "full (the thesis's setting)"}
        p.add_argument("--scale", choices=scales, default=_env_default("EFFCOURSE_SCALE", "book"),
                       help=", ".join(what[s] for s in scales) + "; default: $EFFCOURSE_SCALE, else book")
        if seed:
            p.add_argument("--seed", default=_env_default("EFFCOURSE_SEED", "0"),
                           help="base seed every experiment derives from; default: $EFFCOURSE_SEED, else 0")
        p.add_argument("--device", default=_env_default("EFFCOURSE_DEVICE", "auto"),
                       help="auto (CUDA when present), cpu, cuda or cuda:N; default: $EFFCOURSE_DEVICE, else auto")
        p.add_argument("--threads", default=None,
                       help="torch/BLAS threads per chapter; default: $EFFCOURSE_THREADS, else the cores available")
        p.add_argument("--force", action="store_true", help="execute even when an unchanged execution exists")
        p.add_argument("--quiet", action="store_true", help="no line per executed cell, only one per chapter")

    e = sub.add_parser("execute", help="execute chapters with papermill (reusing unchanged executions)")
    e.add_argument("chapters", nargs="*", help="chapter ids or names, e.g. 04-scq or scq (default: all)")
    run_options(e)
    e.add_argument("--claims", choices=("assert", "report"), default=_env_default("EFFCOURSE_CLAIMS", "assert"),
                   help="assert: a failed claim stops the chapter; report: record it and go on "
                        "(default: $EFFCOURSE_CLAIMS, else assert)")
    e.add_argument("--out", default=None, help="folder for the executed notebooks (default: _build/executed/SCALE)")
    b = sub.add_parser("book", help="execute every chapter and build the HTML book")
    run_options(b)
    sd = sub.add_parser("seeds", help="execute chapters at several base seeds; write a claim x seed hold-rate table")
    sd.add_argument("chapters", nargs="*", help="chapter ids or names (default: all)")
    run_options(sd, scales=("smoke", "book"), seed=False)
    sd.add_argument("--seeds", required=True, help="base seeds, e.g. 100-109 or 1,4,7")
    sd.add_argument("--jobs", default=None, help="chapter executions at a time (default: cores / threads)")
    sd.add_argument("--out", default=None, help="folder for the runs and the table (default: _build/seeds/SCALE)")
    sd.add_argument("--publish", action="store_true",
                    help="also write the table to book/hold-rates.json, which the report page shows")
    sd.add_argument("--collect", action="store_true",
                    help="execute nothing: build the table from the runs already in --out (a missing run is an error)")
    s = sub.add_parser("sync", help="rewrite .ipynb pairs from their .py sources (executing only what changed)")
    s.add_argument("chapters", nargs="*", help="chapter ids or names (default: all)")
    sub.add_parser("check", help="check that every pair is in sync")
    return ap


def _positive(ap: argparse.ArgumentParser, name: str, value, env: str | None = None) -> int:
    try:
        n = int(value)
        if n < 0 or str(n) != str(value).strip():
            raise ValueError
        return n
    except (TypeError, ValueError):
        where = f" (from ${env})" if env and os.environ.get(env) == value else ""
        ap.error(f"argument --{name}: must be a non-negative integer{where}; got {value!r}")


def main(argv: list[str] | None = None) -> int:
    from ..core.config import SCALES
    from ..core.harness import resolve_device
    from . import seeds as seedsweep

    ap = _parser()
    args = ap.parse_args(argv)
    if getattr(args, "scale", None) is not None and args.scale not in SCALES:  # only from $EFFCOURSE_SCALE
        ap.error(f"EFFCOURSE_SCALE must be one of {SCALES}; got {args.scale!r}")
    if getattr(args, "claims", "assert") not in ("assert", "report"):  # only from $EFFCOURSE_CLAIMS
        ap.error(f"EFFCOURSE_CLAIMS must be one of ('assert', 'report'); got {args.claims!r}")
    if hasattr(args, "seed"):
        args.seed = _positive(ap, "seed", args.seed, "EFFCOURSE_SEED")
    if getattr(args, "threads", None) is not None:
        args.threads = _positive(ap, "threads", args.threads) or ap.error("argument --threads: must be at least 1")
    elif hasattr(args, "threads"):
        try:
            args.threads = default_threads()
        except ValueError as err:
            ap.error(str(err))
    if hasattr(args, "device"):
        try:
            resolve_device(args.device)
        except (ValueError, TypeError) as err:
            ap.error(f"argument --device: {err}")

    def pick(keys):
        try:
            return [find_chapter(k) for k in keys] if keys else chapters(written_only=True)
        except ValueError as err:
            ap.error(str(err))

    try:
        if args.cmd == "execute":
            out = Path(args.out) if args.out else None
            for ch in pick(args.chapters):
                print(f"{ch.id}: scale {args.scale!r}, seed {args.seed}, {args.threads} threads ...",
                      flush=True)
                ex = execute(ch, args.scale, args.seed, out_dir=out, force=args.force, device=args.device,
                             threads=args.threads, claims=args.claims, log_output=False, progress=not args.quiet)
                rec = json.loads(ex.metrics.read_text())
                held = sum(c["held"] for c in rec["claims"])
                how = "reused an unchanged execution" if ex.reused else "executed"
                print(f"{ch.id}: {how}; {held}/{len(rec['claims'])} claims held -> {ex.notebook}", flush=True)
        elif args.cmd == "book":
            build_book(args.scale, args.seed, force=args.force, device=args.device, threads=args.threads,
                       cell_progress=not args.quiet)
        elif args.cmd == "seeds":
            try:
                seed_list = seedsweep.parse_seeds(args.seeds)
            except ValueError as err:
                ap.error(f"argument --seeds: {err}")
            jobs = (_positive(ap, "jobs", args.jobs) if args.jobs is not None
                    else max(1, cores() // args.threads)) or ap.error("argument --jobs: at least 1")
            out = Path(args.out) if args.out else ROOT / "_build" / "seeds" / args.scale
            picked = [ch.id for ch in pick(args.chapters)]
            if args.collect:
                try:
                    results = seedsweep.collect(picked, seed_list, out)
                except FileNotFoundError as err:
                    ap.error(f"argument --collect: {err}")
            else:
                results = seedsweep.sweep(picked, seed_list, args.scale, out, jobs=jobs, threads=args.threads,
                                          device=args.device)
            table = seedsweep.hold_rates(results, args.scale)
            js, md = seedsweep.write(table, out)
            print(md.read_text())
            print(f"hold-rate table: {js} and {md}")
            if args.publish:
                (ROOT / "book" / "hold-rates.json").write_text(json.dumps(table, indent=1) + "\n")
                print("published to book/hold-rates.json (the report page shows it)")
            bad = seedsweep.failing(table)
            if bad:
                print("below the 9-of-10 bar or crashed:\n  " + "\n  ".join(bad), file=sys.stderr)
                return 1
        elif args.cmd == "sync":
            for ch in pick(args.chapters):
                path, what = sync(ch, threads=1)
                print(f"{ch.id}: {what} -> {path}")
        elif args.cmd == "check":
            problems = [p for ch in chapters(written_only=True) for p in check_pair(ch)]
            print("\n".join(problems) or "all pairs in sync")
            return 1 if problems else 0
    except ChapterFailed as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Ctrl-C reaches the kernel too: nbclient's task that watches it then ends in DeadKernelError, and asyncio
        # would log that task's traceback ("exception was never retrieved") at exit, after our one line.
        import logging

        logging.getLogger("asyncio").setLevel(logging.CRITICAL)
        print("\ninterrupted: the chapter being executed was stopped; finished executions are kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
