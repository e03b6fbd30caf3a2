"""Set-up files agree: pyproject.toml and environment.yml declare the same dependencies; CI runs `make test`."""

import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parent.parent


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower().replace("_", "-")


def test_environment_yml_declares_the_pyproject_dependencies():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(map(_norm, py["dependencies"]))
    for extra in ("book", "test"):
        declared |= set(map(_norm, py["optional-dependencies"][extra]))
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    listed = {_norm(r) for r in pip if not r.startswith("-e") and r != "torch==2.13.0"}
    assert listed == declared, (sorted(listed - declared), sorted(declared - listed))
    assert "torch==2.13.0" in pip, "conda users get the same CPU torch as the Makefile"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci and "make test" in readme and "make book" in readme
    make = (ROOT / "Makefile").read_text()
    assert "torch==2.13.0" in make and "-n -W" not in make  # -W lives in effcourse.book.notebooks.build_book


def test_jupyter_book_is_v1_and_toc_lists_eight_chapters():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(r.replace(" ", "") == "jupyter-book>=1.0.4.post1,<2" for r in py["optional-dependencies"]["book"])
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert sum(f.startswith("chapters/") for f in files) == 8
