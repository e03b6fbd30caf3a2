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


def test_installed_versions_are_within_the_declared_bounds():
    from importlib.metadata import version

    from packaging.requirements import Requirement

    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in py["dependencies"] + py["optional-dependencies"]["book"]]
    outside = [f"{r.name} {version(r.name)} not in {r.specifier}" for r in reqs
               if not r.specifier.contains(version(r.name), prereleases=True)]
    assert outside == []
    bounded = {r.name for r in reqs if any(s.operator == "<" for s in r.specifier)}
    assert bounded >= {"cvxpy", "cvxpylayers", "diffcp", "transformers"}, "the solver stack has upper bounds"


def test_doctor_knows_every_dependency_and_reports_each_target(capsys):
    from packaging.requirements import Requirement

    from effcourse.book import doctor

    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {Requirement(r).name.lower() for r in py["dependencies"] + py["optional-dependencies"]["book"]
             + py["optional-dependencies"]["test"]}
    assert names == {n.lower() for n in doctor.LIBRARY + doctor.BOOK + doctor.TEST}
    assert doctor.main([]) == 0
    out = capsys.readouterr().out
    for target in ("make book:", "make test:", "gpu tests:", "scale full:"):
        assert target in out
    assert "make book:    ready" in out and "make test:    ready" in out  # the suite itself runs on a full install
    assert "MiniLM weights" in out and "solvers (cvxpy):" in out


def test_makefile_lets_the_reader_choose_the_torch_index():
    make = (ROOT / "Makefile").read_text()
    assert "TORCH_INDEX ?=" in make and "$(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))" in make
    assert "download.pytorch.org/whl/cpu" in (ROOT / "environment.yml").read_text()


def test_one_version_everywhere():
    from effcourse import __version__

    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    book = yaml.safe_load((ROOT / "_config.yml").read_text())["parse"]["myst_substitutions"]
    assert py["version"] == __version__ == cff["version"] == book["version"]
    assert cff["repository-code"] == yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert f"## [{__version__}]" in (ROOT / "CHANGELOG.md").read_text()
    assert "{{ version }}" in (ROOT / "book" / "intro.md").read_text()
