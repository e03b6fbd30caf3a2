"""Tables for the chapters: rows in, Markdown out (rendered by Jupyter and by the book), one helper for all.

    table([{"method": "VQ", "mse": 3.1e-3}, {"method": "SCQ", "mse": 1.2e-3}], fmt={"mse": ".2e"})

A row is a mapping (columns are taken from the first row unless ``columns`` is given) or a sequence (then
``columns`` is required).  Floats use ``fmt[column]`` (a format spec or a function), else ``floatfmt``;
``None`` shows as an empty cell; ``|`` inside cells is escaped (so LaTeX such as ``$|x|$`` is safe), and with
``escape_html`` so are ``<``, ``>`` and ``&`` (for free text that is not meant as math).
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["Table", "table"]

Format = str | Callable[[Any], str]


def _cell(value: Any, spec: Format | None, floatfmt: str, escape_html: bool = False) -> str:
    if value is None:
        return ""
    if callable(spec):
        text = spec(value)
    elif isinstance(value, bool):
        text = "yes" if value else "no"
    elif isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        v = float(value)
        text = str(v) if not math.isfinite(v) else format(v, spec or floatfmt)
    elif spec is not None:
        text = format(value, spec)
    else:
        text = str(value)
    if escape_html:
        text = html.escape(text, quote=False)
    return text.replace("|", "\\|").replace("\n", " ")


class Table:
    """A Markdown table that displays itself in Jupyter (``_repr_markdown_``); ``str()`` gives the Markdown."""

    def __init__(self, rows: Sequence[Mapping[str, Any] | Sequence[Any]], columns: Sequence[str] | None = None, *,
                 fmt: Mapping[str, Format] | None = None, floatfmt: str = ".3g", caption: str | None = None,
                 escape_html: bool = False):
        rows = list(rows)
        if columns is None:
            if not rows or not isinstance(rows[0], Mapping):
                raise ValueError("columns is required unless rows are mappings (columns then come from the first)")
            columns = list(rows[0])
        self.columns = [str(c) for c in columns]
        if not self.columns:
            raise ValueError("a table needs at least one column")
        fmt = dict(fmt or {})
        unknown = set(fmt) - set(self.columns)
        if unknown:
            raise ValueError(f"fmt names unknown columns {sorted(unknown)}; columns: {self.columns}")
        self.cells: list[list[str]] = []
        for i, row in enumerate(rows):
            if isinstance(row, Mapping):
                extra = set(row) - set(self.columns)
                if extra:
                    raise ValueError(f"row {i} has keys not among the columns: {sorted(extra)}")
                values = [row.get(c) for c in self.columns]
            else:
                values = list(row)
                if len(values) != len(self.columns):
                    raise ValueError(f"row {i} has {len(values)} values for {len(self.columns)} columns")
            self.cells.append([_cell(v, fmt.get(c), floatfmt, escape_html) for c, v in zip(self.columns, values)])
        self.caption = caption

    def to_markdown(self) -> str:
        head = [" | ".join(_cell(c, None, "") for c in self.columns), " | ".join("---" for _ in self.columns)]
        lines = [f"| {line} |" for line in head + [" | ".join(r) for r in self.cells]]
        if self.caption:
            lines += ["", f"*{self.caption}*"]
        return "\n".join(lines)

    __str__ = to_markdown
    __repr__ = to_markdown  # the plain-text view of a notebook output (e.g. nbval, a console) is the table too

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __len__(self) -> int:
        return len(self.cells)


def table(rows: Sequence[Mapping[str, Any] | Sequence[Any]], columns: Sequence[str] | None = None, *,
          fmt: Mapping[str, Format] | None = None, floatfmt: str = ".3g", caption: str | None = None,
          escape_html: bool = False) -> Table:
    """A :class:`Table` of ``rows``; the last expression of a cell, it renders as Markdown."""
    return Table(rows, columns, fmt=fmt, floatfmt=floatfmt, caption=caption, escape_html=escape_html)
