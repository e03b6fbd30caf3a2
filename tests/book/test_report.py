"""The reproduction report: records in, Markdown tables out."""

import json

import pytest

from effcourse.book.report import BEGIN, END, ChapterEntry, fill, load, md_cell, render


def _record(chapter, scale="book", claims=None):
    return {
        "chapter": chapter, "scale": scale, "seed": 0, "metrics": {},
        "claims": claims if claims is not None else [
            {"name": "a | b", "held": True, "thesis": "x = $1$", "ours": "0.5", "asserted": True, "value": 0.5},
            {"name": "c", "held": False, "thesis": "y", "ours": "<2", "asserted": False, "value": None},
        ],
        "env": {"date": "2026-11-23T18:57:16+00:00", "torch": "2.13.0+cpu", "python": "3.11.7", "device": "cpu",
                "device_name": "x86_64", "threads": 2},
    }


def test_md_cell_escapes_what_would_break_a_table_row_or_become_math():
    assert md_cell("a | b") == "a \\| b"
    assert md_cell("$x$") == "\\$x\\$"
    assert md_cell("<b>") == "&lt;b&gt;"
    assert md_cell("two\nlines") == "two lines"


def test_render_summarises_and_lists_every_claim():
    entries = [ChapterEntry("01-a", "chapters/01-a/a", "Chapter A", "Part 1", _record("01-a", "smoke")),
               ChapterEntry("02-b", "chapters/02-b/b", "Chapter B", "Part 2", None)]
    md = render(entries)
    assert "1 of 2 chapters executed" in md and "1 of 2 claims held" in md and "1 of 1 asserted" in md
    assert "[Chapter A](../chapters/01-a/a.ipynb)" in md
    assert "| 1/2 | 1/1 |" in md  # held of all, held of asserted
    assert "a \\| b" in md and "x = \\$1\\$" in md and "&lt;2" in md
    assert "**no** (not asserted at smoke)" in md
    assert "**not executed**" in md and "was not executed in this build" in md
    assert "torch 2.13.0+cpu" in md and "2026-11-23 18:57" in md and "cpu (x86_64, 2 threads)" in md
    assert "| Part 1 |" in md
    # one section per chapter, in the order given
    assert md.index("## Chapter A") < md.index("## Chapter B")


def test_render_marks_a_failed_asserted_claim():
    rec = _record("01-a", claims=[{"name": "n", "held": False, "thesis": "t", "ours": "o", "asserted": True}])
    md = render([ChapterEntry("01-a", "chapters/01-a/a", "A", "P", rec)])
    assert "| n | t | o | `book` | **no** | - |" in md and "0 of 1 claims held" in md


def test_render_separates_math_from_empirical_and_shows_hold_rates():
    claims = [{"name": "id", "kind": "math", "held": True, "thesis": "t", "ours": "o", "asserted": True},
              {"name": "emp", "kind": "empirical", "held": True, "thesis": "t", "ours": "o", "asserted": True},
              {"name": "weak", "kind": "empirical", "held": False, "thesis": "t", "ours": "o", "asserted": False,
               "reported": True}]
    rates = {"scale": "book", "seeds": [100, 101], "assert_rate": 0.9, "chapters": {"01-a": {"claims": {
        "emp": {"held_count": 2}, "weak": {"held_count": 1}}}}}
    md = render([ChapterEntry("01-a", "chapters/01-a/a", "A", "P", _record("01-a", claims=claims))], rates=rates)
    assert md.index("**Empirical claims** (2)") < md.index("| emp |") < md.index("**Checks of the mathematics** (1)")
    assert md.index("**Checks of the mathematics** (1)") < md.index("| id |")
    assert "| emp | t | o | `book` | yes | 2/2 |" in md and "(reported, not asserted) | 1/2 |" in md
    assert "| id | t | o | `book` | yes | - |" in md and "base seeds 100, 101" in md
    assert "no hold rates" in render([ChapterEntry("01-a", "chapters/01-a/a", "A", "P", _record("01-a"))])


def test_render_needs_entries():
    with pytest.raises(ValueError, match="entries"):
        render([])


def test_fill_replaces_only_the_marked_region():
    page = f"# Report\n\nintro\n\n{BEGIN}\nold\n{END}\ntail\n"
    out = fill(page, "new body")
    assert out.startswith("# Report\n\nintro") and "new body" in out and "old" not in out and out.endswith("tail\n")
    with pytest.raises(ValueError, match="effcourse:report"):
        fill("# no markers", "x")


def test_load_rejects_a_file_that_is_not_a_record(tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(_record("01-a")))
    bad.write_text(json.dumps({"chapter": "01-a"}))
    assert load(good)["chapter"] == "01-a"
    with pytest.raises(ValueError, match="missing"):
        load(bad)


def test_the_committed_page_has_the_markers():
    from effcourse.book.notebooks import ROOT

    text = (ROOT / "book" / "report.md").read_text()
    assert text.index(BEGIN) < text.index(END)


def test_render_shows_cost_commit_value_statistics_and_deviations():
    rec = _record("01-a", claims=[{"name": "emp", "kind": "empirical", "held": True, "thesis": "t", "ours": "o",
                                   "asserted": True, "value": 0.5}])
    rec["env"].update(peak_rss_mb=812.4, seconds=50.0)
    rec["execution"] = {"seconds": 61.2, "threads": 2, "commit": "0123456789abcdef", "dirty": True}
    rec["deviations"] = [{"topic": "data", "thesis": "CIFAR-10", "here": "digits | 8x8", "why": "offline"}]
    rates = {"scale": "book", "seeds": [100, 101, 102], "assert_rate": 0.9, "chapters": {"01-a": {"claims": {
        "emp": {"held_count": 3, "value_stats": {"mean": 0.25, "std": 0.125, "n": 3}}}}}}
    md = render([ChapterEntry("01-a", "chapters/01-a/a", "A", "P", rec)], rates=rates)
    assert "| 2 | 61 s | 812 MiB |" in md  # threads, the tooling's wall time (not the kernel's), peak memory
    assert "commit `0123456789` with uncommitted changes" in md and "effcourse 0." in md
    assert "| 3/3 | 0.25 ± 0.12 (n=3) |" in md
    assert "**Deviations from the thesis** (1)" in md and "here: digits \\| 8x8 (offline)" in md
    bare = render([ChapterEntry("01-a", "chapters/01-a/a", "A", "P", _record("01-a"))])
    assert "None recorded." in bare and "an unrecorded commit" in bare and "| 2 | - | - |" in bare
