"""Deviations from the thesis: one structured list per chapter, shown by the chapter and listed by the report."""

import pytest

from effcourse.core.config import CHAPTER_PACKAGES, Deviation, deviations


def test_deviation_fields_must_be_filled():
    with pytest.raises(ValueError, match="Deviation.why"):
        Deviation("data", "CIFAR-10", "digits", " ")


@pytest.mark.parametrize("chapter", list(CHAPTER_PACKAGES))
def test_every_chapter_lists_its_deviations(chapter):
    devs = deviations(chapter)
    assert devs, f"effcourse.{CHAPTER_PACKAGES[chapter]}.config has no DEVIATIONS"
    assert len({d.topic for d in devs}) == len(devs), "one entry per topic"


def test_the_run_records_them_and_shows_them_as_a_table():
    from effcourse import Run

    run = Run("08-avagrad", scale="smoke")
    assert run.record()["deviations"] == [vars(d) for d in deviations("08-avagrad")]
    md = run.deviations_table()._repr_markdown_()
    assert all(d.topic in md for d in deviations("08-avagrad"))
