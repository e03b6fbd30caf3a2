"""The execution harness behind ``make book``/``make chapter``/``make sync``: cache keys, reuse, failures, the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from effcourse.book import notebooks as nbs
from effcourse.book.notebooks import Chapter, ChapterFailed, chapter_dependencies, execute, execution_key, sync

TINY = '''\
# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A tiny chapter
#
# Some prose.

# %% tags=["parameters"]
SCALE = "book"
SEED = 0
DEVICE = "auto"

# %%
import os
from effcourse import Run
run = Run("08-avagrad", scale="smoke", seed=SEED, device="cpu")  # writes $EFFCOURSE_METRICS
print("threads", run.threads, "claims", os.environ["EFFCOURSE_CLAIMS"])

# %% [markdown]
# Closing prose.
'''


def _chapter(tmp_path: Path, source: str = TINY, name: str = "99-tiny") -> Chapter:
    folder = tmp_path / "chapters" / name
    folder.mkdir(parents=True)
    (folder / f"{name[3:]}.py").write_text(source)
    return Chapter(folder)


def _fake_library(root: Path) -> None:
    files = {"effcourse/__init__.py": "from .core import x\n", "effcourse/core/__init__.py": "",
             "effcourse/core/x.py": "X = 1\n", "effcourse/a/__init__.py": "from .m import f\n",
             "effcourse/a/m.py": "from ..b import n\nfrom ..core.x import X\n", "effcourse/b/__init__.py": "",
             "effcourse/b/n.py": "N = 2\n", "effcourse/c/__init__.py": "", "effcourse/c/o.py": "O = 3\n"}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_a_chapter_depends_on_core_its_subpackage_and_what_that_imports(tmp_path):
    _fake_library(tmp_path)
    ch = _chapter(tmp_path, TINY.replace("from effcourse import Run", "from effcourse.a import f"))
    deps = {str(p.relative_to(tmp_path)) for p in chapter_dependencies(ch, tmp_path)}
    assert deps == {"effcourse/__init__.py", "effcourse/core/__init__.py", "effcourse/core/x.py",
                    "effcourse/a/__init__.py", "effcourse/a/m.py", "effcourse/b/__init__.py", "effcourse/b/n.py"}
    key = execution_key(ch, "smoke", 0, tmp_path)
    (tmp_path / "effcourse/c/o.py").write_text("O = 4  # another chapter's subpackage\n")
    assert execution_key(ch, "smoke", 0, tmp_path) == key
    ch.source.write_text(ch.source.read_text().replace("Some prose.", "Other prose."))
    assert execution_key(ch, "smoke", 0, tmp_path) == key  # Markdown does not change a result
    for changed in (dict(threads=2), dict(device="cpu"), dict(claims="report")):
        assert execution_key(ch, "smoke", 0, tmp_path, **changed) != key, changed
    assert execution_key(ch, "smoke", 1, tmp_path) != key and execution_key(ch, "book", 0, tmp_path) != key
    (tmp_path / "effcourse/b/n.py").write_text("N = 3\n")
    assert execution_key(ch, "smoke", 0, tmp_path) != key


def test_the_key_sees_the_numerical_stack(tmp_path, monkeypatch):
    ch = _chapter(tmp_path)
    key = execution_key(ch, "smoke", 0, tmp_path)
    assert "cvxpylayers=" in nbs._versions() and "diffcp=" in nbs._versions() and "transformers=" in nbs._versions()
    monkeypatch.setattr(nbs, "_versions", lambda: "torch=9.9")
    assert execution_key(ch, "smoke", 0, tmp_path) != key


@pytest.mark.slow
def test_execute_reuses_refreshes_markdown_and_names_a_failure(tmp_path, capfd):
    ch = _chapter(tmp_path)
    out = tmp_path / "out"
    first = execute(ch, "smoke", 0, out_dir=out, threads=1)
    assert not first.reused and first.metrics.name == "metrics.json"
    text = json.dumps(nbformat.read(first.notebook, as_version=4).cells[3]["outputs"])
    assert "threads 1 claims assert" in text
    assert "without encryption" not in capfd.readouterr().err  # quiet kernels
    ch.source.write_text(ch.source.read_text().replace("Closing prose.", "Edited closing prose."))
    again = execute(ch, "smoke", 0, out_dir=out, threads=1)
    assert again.reused
    cells = nbformat.read(again.notebook, as_version=4).cells
    assert any("Edited closing prose." in c.source for c in cells if c.cell_type == "markdown")
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in cells)
    assert not execute(ch, "smoke", 0, out_dir=out, threads=2).reused  # the thread count is part of the key
    ch.source.write_text(ch.source.read_text() + "\n# %%\nraise ValueError('boom')\n")
    with pytest.raises(ChapterFailed) as err:
        execute(ch, "smoke", 0, out_dir=out, threads=1)
    msg = str(err.value)
    assert "99-tiny" in msg and "ValueError: boom" in msg and "cell [" in msg and str(out / "99-tiny") in msg


@pytest.mark.slow
def test_execute_into_a_relative_folder_shows_cell_progress_and_stamps_the_run(tmp_path, monkeypatch, capsys):
    ch = _chapter(tmp_path)
    monkeypatch.chdir(tmp_path)  # the kernel runs in the chapter's folder: a relative --out must still work
    ex = execute(ch, "smoke", 0, out_dir=Path("rel-out"), threads=1, progress=True)
    assert ex.metrics == (tmp_path / "rel-out" / "99-tiny" / "metrics.json").resolve() and ex.metrics.exists()
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip().startswith("99-tiny  cell")]
    assert [ln.split()[2] for ln in lines] == ["1/3", "2/3", "3/3"]  # injected parameters + 2 code cells
    assert re.match(r"\s+99-tiny  cell 3/3  0:00:\d\d  \+\d+\.\d s$", lines[-1])
    stamp = json.loads(ex.metrics.read_text())["execution"]
    assert stamp["threads"] == 1 and stamp["seconds"] > 0 and set(stamp) >= {"commit", "dirty"}


def test_git_commit_names_the_checkout_or_says_none(tmp_path):
    from effcourse.book.notebooks import ROOT, git_commit

    here = git_commit(ROOT)
    assert (here["commit"] is None) or re.fullmatch(r"[0-9a-f]{40}", here["commit"])
    assert git_commit(tmp_path) == {"commit": None, "dirty": None}


def test_chapter_times_table_totals_what_was_executed():
    from effcourse.book.notebooks import chapter_times_table

    text = chapter_times_table([
        {"chapter": "01-a", "how": "executed", "seconds": 61.4, "held": 3, "asserted": 3},
        {"chapter": "02-b", "how": "reused", "seconds": 120.0, "held": 2, "asserted": 4}])
    lines = text.splitlines()
    assert lines[1].split() == ["01-a", "executed", "61", "s", "3/3"]
    assert lines[2].split() == ["02-b", "reused", "120", "s", "2/4"]
    assert lines[-1].split()[-2:] == ["61", "s"]  # reused chapters cost nothing this time


@pytest.mark.slow
def test_sync_keeps_cell_ids_stable(tmp_path):
    ch = _chapter(tmp_path)
    _, how = sync(ch)
    assert "updated" in how and "nothing executed" in how
    ids = [c.id for c in nbformat.read(ch.notebook, as_version=4).cells]
    assert sync(ch)[1].startswith("unchanged")
    ch.source.write_text(ch.source.read_text().replace("Closing prose.", "New closing prose.")
                         .replace("# # A tiny chapter", "# # A tiny chapter\n\n# %% [markdown]\n# Inserted."))
    sync(ch)
    cells = nbformat.read(ch.notebook, as_version=4).cells
    assert len(cells) == len(ids) + 1
    kept = [c.id for c in cells if "Inserted" not in c.source]
    assert kept == ids  # the edited cell keeps its id; the inserted one gets a new, non-random one
    inserted = next(c.id for c in cells if "Inserted" in c.source)
    assert inserted not in ids
    other = _chapter(tmp_path / "again", ch.source.read_text())
    other.notebook.write_text("")
    other.notebook.unlink()
    sync(other)
    assert next(c.id for c in nbformat.read(other.notebook, as_version=4).cells if "Inserted" in c.source) != ""


def test_cli_honours_the_environment_and_rejects_bad_input_in_one_line(monkeypatch, capsys):
    monkeypatch.setenv("EFFCOURSE_SCALE", "smoke")
    monkeypatch.setenv("EFFCOURSE_SEED", "7")
    monkeypatch.setenv("EFFCOURSE_DEVICE", "cpu")
    args = nbs._parser().parse_args(["execute", "08-avagrad"])
    assert (args.scale, args.seed, args.device) == ("smoke", "7", "cpu")
    args = nbs._parser().parse_args(["execute", "08-avagrad", "--scale", "book", "--seed", "3"])
    assert (args.scale, args.seed) == ("book", "3")  # a flag wins over the environment
    cases = [({"EFFCOURSE_SCALE": "huge"}, ["execute", "08-avagrad"], "EFFCOURSE_SCALE must be one of"),
             ({}, ["execute", "nope"], "no chapter 'nope'"),
             ({}, ["execute", "08-avagrad", "--scale", "huge"], "invalid choice: 'huge'"),
             ({}, ["execute", "08-avagrad", "--device", "tpu"], "argument --device"),
             ({"EFFCOURSE_SEED": "x"}, ["execute", "08-avagrad"], "(from $EFFCOURSE_SEED)"),
             ({}, ["execute", "08-avagrad", "--threads", "0"], "argument --threads"),
             ({"EFFCOURSE_CLAIMS": "maybe"}, ["execute", "08-avagrad"], "EFFCOURSE_CLAIMS must be one of"),
             ({}, ["seeds", "--seeds", "9-3"], "argument --seeds"),
             ({}, ["seeds", "--seeds", "1", "--scale", "full"], "invalid choice: 'full'")]
    for env, argv, msg in cases:
        monkeypatch.delenv("EFFCOURSE_CLAIMS", raising=False)
        monkeypatch.setenv("EFFCOURSE_SCALE", "smoke")
        monkeypatch.setenv("EFFCOURSE_SEED", "0")
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        with pytest.raises(SystemExit) as stop:
            nbs.main(argv)
        assert stop.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert msg in err[-1] and "Traceback" not in "\n".join(err), (argv, err)


def test_every_option_has_help():
    ap = nbs._parser()
    subs = next(a for a in ap._actions if a.dest == "cmd").choices
    for name, sub in subs.items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help text"
    scale = next(a for a in subs["execute"]._actions if a.dest == "scale")
    assert scale.choices == ("smoke", "book", "full")


def test_threads_default_to_the_environment_then_the_cores(monkeypatch):
    import os

    monkeypatch.setenv("EFFCOURSE_THREADS", "3")
    assert nbs.default_threads() == 3
    monkeypatch.delenv("EFFCOURSE_THREADS")
    assert nbs.default_threads() == len(os.sched_getaffinity(0))


@pytest.mark.slow
def test_ctrl_c_stops_cleanly(tmp_path):
    """Ctrl-C in a terminal signals the whole process group: one line, exit 130, no traceback from the kernel."""
    import os
    import signal
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "effcourse.book.notebooks", "execute", "02-mezo-svrg", "--scale", "smoke",
           "--out", str(tmp_path), "--force", "--threads", "1"]
    # SIGINT as a terminal has it: a suite started in the background (`make test &`) inherits it ignored
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    for line in proc.stdout:  # no sleep: interrupt once the kernel has executed three cells (progress lines)
        seen.append(line)
        if " cell 3/" in line:
            break
    assert any(" cell 3/" in line for line in seen), "".join(seen)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    out = "".join(seen) + out
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "ZMQError" not in err and err.strip().splitlines()[-1].startswith("interrupted")
