"""Aligned plain-text tables for people (scripts get `--json`): no colours, no box drawing, no dependency."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["render_table"]

_GAP = "  "


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, right: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell; the columns numbered in `right` (numbers) are right-aligned.

    Returns the lines joined by newlines, without trailing spaces or a final newline.
    """
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells, table has {len(headers)} columns")
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    aligned = set(right)
    lines = []
    for row in [list(headers), *cells]:
        padded = [text.rjust(widths[i]) if i in aligned else text.ljust(widths[i]) for i, text in enumerate(row)]
        lines.append(_GAP.join(padded).rstrip())
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    # One line per row: a newline in a cell (an error message) would break every column after it.
    return " ".join(str(value).split()) if isinstance(value, str) else str(value)
