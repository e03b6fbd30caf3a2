"""A Sphinx extension for the book build: each page loads each script once.

jupyter-book 1 registers sphinx-thebe's inline configuration script twice, so every page declared
``const THEBE_JS_URL`` twice and the browser raised a ``SyntaxError`` on load (the browser test caught it).
Scripts with a file are already de-duplicated by Sphinx; this drops repeated inline ones as well.
"""

from __future__ import annotations

from typing import Any

__all__ = ["dedupe_scripts", "setup"]


def _key(js: Any) -> tuple:
    attrs = getattr(js, "attributes", {}) or {}
    # the same inline script arrives once with filename None and once with "" (registry vs builder)
    return getattr(js, "filename", str(js)) or "", tuple(sorted((k, str(v)) for k, v in attrs.items()))


def dedupe_scripts(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    """``html-page-context`` handler: keep the first of identical entries of ``context['script_files']``."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, kept = set(), []
    for js in scripts:
        k = _key(js)
        if k not in seen:
            seen.add(k)
            kept.append(js)
    scripts[:] = kept


def setup(app) -> dict[str, Any]:
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
