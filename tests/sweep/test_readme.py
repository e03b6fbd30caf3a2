"""The README's table of full-scale costs is what `sweep plan` computes today."""

from __future__ import annotations

import re
from pathlib import Path

from effcourse.core.config import CHAPTER_PACKAGES
from effcourse.sweep.cli import plan_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_cost_table_is_the_plan():
    text = README.read_text()
    m = re.search(r"<!-- sweep-plan-table:[^\n]*-->\n(.*?)<!-- end-sweep-plan-table -->", text, re.S)
    assert m, "README.md lacks the sweep-plan-table block"
    expected = plan_table(list(CHAPTER_PACKAGES))
    assert m.group(1).strip() == expected, (
        "README's cost table is stale; replace it with `python -m effcourse.sweep plan all --markdown`:\n" + expected)
