"""The house style of a chapter (CONTRIBUTING.md), checked on every written chapter's jupytext source.

A chapter narrates and the library computes: short code cells, more prose than code, imports from its own
subpackage and ``core`` only, tables through one helper, the data set chosen by one factory, and the same
closing sections everywhere.
"""

from __future__ import annotations

import re

import pytest

from effcourse.book import setup_cell
from effcourse.book.notebooks import chapters, read_source
from effcourse.core.config import CHAPTER_PACKAGES

WRITTEN = [c.id for c in chapters(written_only=True)]
MAX_CELL_LINES = 30
CLOSING = ["## What did not reproduce", "## At the thesis's scale", "## Exercises", "## Claims"]
EXERCISES = (3, 5)


def _cells(chapter: str):
    ch = next(c for c in chapters() if c.id == chapter)
    return read_source(ch).cells


def _code_lines(source: str) -> list[str]:
    return [line for line in source.splitlines() if line.strip() and not line.strip().startswith("#")]


@pytest.mark.parametrize("chapter", WRITTEN)
def test_code_cells_are_short(chapter):
    long = [(i, len(_code_lines(c.source))) for i, c in enumerate(_cells(chapter))
            if c.cell_type == "code" and len(_code_lines(c.source)) > MAX_CELL_LINES]
    assert not long, f"code cells over {MAX_CELL_LINES} lines (cell, lines): {long}; move the work into effcourse"


@pytest.mark.parametrize("chapter", WRITTEN)
def test_prose_outweighs_code(chapter):
    cells = _cells(chapter)
    prose = sum(len([x for x in c.source.splitlines() if x.strip()]) for c in cells if c.cell_type == "markdown")
    code = sum(len(_code_lines(c.source)) for c in cells if c.cell_type == "code")
    assert prose >= code, f"{code} lines of code against {prose} of prose"


@pytest.mark.parametrize("chapter", WRITTEN)
def test_imports_only_from_its_own_subpackage_and_core(chapter):
    """Its own subpackage, ``core``, and ``sweep`` (what the chapter at ``full`` reads its experiments from)."""
    own = CHAPTER_PACKAGES[chapter]
    allowed = re.compile(rf"effcourse(\.(core|sweep|{own})(\.\w+)*)?$")
    found = [m.group(1) for c in _cells(chapter) if c.cell_type == "code"
             for m in re.finditer(r"^\s*(?:from|import)\s+(effcourse[\w.]*)", c.source, re.M)]
    assert found, "a chapter imports effcourse"
    assert [m for m in found if not allowed.match(m)] == []


@pytest.mark.parametrize("chapter", WRITTEN)
def test_tables_and_data_go_through_one_helper(chapter):
    code = "\n".join(line for c in _cells(chapter)
                     if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
                     for line in _code_lines(c.source))
    assert not re.search(r"""(["'])\s*\|\s""", code), "a Markdown table built from strings: use run.table(...)"
    assert "cfg.dataset ==" not in code, "choose data through effcourse.core.data.dataset(cfg.dataset, ...)"


@pytest.mark.parametrize("chapter", WRITTEN)
def test_skeleton(chapter):
    cells = _cells(chapter)
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# "), "a title first"
    params = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    assert params, "a parameters cell"
    heads = [line for c in cells if c.cell_type == "markdown" for line in c.source.splitlines()
             if line.startswith("## ")]
    assert heads[0] == "## Set-up", f"the first section is '## Set-up'; got {heads[0]!r}"
    numbered = [h for h in heads[1:-len(CLOSING)]]
    assert numbered and all(re.match(rf"## {i}\. \S", h) for i, h in enumerate(numbered, 1)), numbered
    assert [h.rstrip() for h in heads[-len(CLOSING):]] == CLOSING
    last = [c for c in cells if c.cell_type == "code"][-1]
    assert last.source.strip() == "run.claims_table()"


@pytest.mark.parametrize("chapter", WRITTEN)
def test_setup_cell_installs_the_book_version(chapter):
    cells = _cells(chapter)
    first = next(c for c in cells if c.cell_type == "code")
    assert "remove-cell" in first.metadata.get("tags", []), "the setup cell is hidden in the book"
    expected = setup_cell.source(chapter).split("\n", 1)[1]  # without the jupytext header line
    assert first.source.strip() == expected.strip(), "run `make sync CH=...`: the setup cell is out of date"
    assert setup_cell.repository_url() in first.source


def _exercise_section(cells):
    start = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and "\n## Exercises" in "\n" + c.source)
    end = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and "\n## Claims" in "\n" + c.source)
    return cells[start:end]


@pytest.mark.parametrize("chapter", WRITTEN)
def test_exercises_have_solutions_that_run(chapter):
    """3-5 exercises (sphinx-exercise), each followed by a dropdown solution gating at least one code cell."""
    section = _exercise_section(_cells(chapter))
    labels, solved, inside, code_in = [], [], None, 0
    for c in section:
        if c.cell_type == "code":
            code_in += inside is not None
            continue
        for m in re.finditer(r"```\{(exercise|solution-start|solution-end)\}\s*([^\n]*)\n((?::\w+:[^\n]*\n)*)",
                             c.source):
            kind, arg, opts = m.groups()
            if kind == "exercise":
                label = re.search(r":label:\s*(\S+)", opts)
                assert label, f"exercise {arg!r} has no :label:"
                labels.append(label.group(1))
            elif kind == "solution-start":
                assert inside is None, f"solution of {arg} starts inside another solution"
                assert ":class: dropdown" in opts, f"the solution of {arg} is hidden behind a toggle"
                inside, code_in = arg.strip(), 0
            else:
                assert inside is not None, "solution-end without solution-start"
                assert code_in, f"the solution of {inside} runs code"
                solved.append(inside)
                inside = None
    assert inside is None, f"the solution of {inside} is not closed"
    assert EXERCISES[0] <= len(labels) <= EXERCISES[1], f"{len(labels)} exercises; a chapter has 3-5"
    assert sorted(solved) == sorted(labels), f"exercises {labels} against solutions {solved}"
    assert all(label.startswith(f"ch{chapter[:2]}-") for label in labels), "labels start with ch<NN>-"


@pytest.mark.parametrize("chapter", WRITTEN)
def test_the_thesis_scale_section_shows_the_deviations(chapter):
    cells = _cells(chapter)
    start = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and "## At the thesis's scale" in c.source)
    end = next(i for i, c in enumerate(cells) if c.cell_type == "markdown" and "\n## Exercises" in "\n" + c.source)
    assert any(c.cell_type == "code" and c.source.strip() == "run.deviations_table()" for c in cells[start:end])


@pytest.mark.parametrize("chapter", WRITTEN)
def test_no_control_characters_in_the_source(chapter):
    """A tab or other control character in prose is almost always an escape gone wrong (``"\\text"`` -> tab + "ext")."""
    ch = next(c for c in chapters() if c.id == chapter)
    bad = [(i + 1, line[:60]) for i, line in enumerate(ch.source.read_text().splitlines())
           if any(ord(c) < 32 for c in line)]
    assert not bad, f"control characters on lines {bad}"
