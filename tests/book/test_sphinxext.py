"""The book's Sphinx extension: each page loads each script once."""

from sphinx.builders.html._assets import _JavaScript

from effcourse.book.sphinxext import dedupe_scripts


def test_repeated_inline_scripts_are_dropped_in_order():
    ctx = {"script_files": [_JavaScript("a.js"), _JavaScript(None, body="let x = 1;"), _JavaScript("b.js"),
                            _JavaScript("", body="let x = 1;"), _JavaScript(None, body="let y = 2;"),
                            _JavaScript("a.js", defer="defer")]}
    dedupe_scripts(None, "page", "page.html", ctx, None)
    kept = [(js.filename or "", js.attributes) for js in ctx["script_files"]]
    assert kept == [("a.js", {}), ("", {"body": "let x = 1;"}), ("b.js", {}), ("", {"body": "let y = 2;"}),
                    ("a.js", {"defer": "defer"})]


def test_pages_without_a_script_list_are_left_alone():
    ctx = {"script_files": ("a.js", "a.js")}
    dedupe_scripts(None, "page", "page.html", ctx, None)
    assert ctx["script_files"] == ("a.js", "a.js")
