"""The table type both report templates render, and the number formats of its cells."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Table:
    """A table ready for both templates: header, pre-formatted cells, highlighted rows.

    Attributes
    ----------
    columns
        Header cells.
    rows
        One list of strings per row (already formatted).
    best
        Indices of rows to highlight (the best model).
    caption
        Optional caption shown above the table.
    text
        Cells are prose (left-aligned, wrapping) rather than numbers.
    """

    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    best: set[int] = field(default_factory=set)
    caption: str = ""
    text: bool = False

    def cell(self, row: int, column: str) -> str:
        """The cell of ``row`` under the header ``column`` (for tests and templates)."""
        return self.rows[row][self.columns.index(column)]


def f3(value: Any) -> str:
    """A metric with three decimals, or an en dash when missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{float(value):.3f}"


def ci_text(ci: Any) -> str:
    """``[lo, hi]`` with three decimals, or an en dash when missing."""
    if not ci or len(ci) != 2:
        return "–"
    return f"[{float(ci[0]):.3f}, {float(ci[1]):.3f}]"
