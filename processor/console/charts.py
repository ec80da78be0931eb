"""Small line charts as inline SVG, drawn on the server: coordinates for a polyline over the last hour, with
the axis labels a reader needs (the highest value and the time span). No script, no external asset."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Chart", "line_chart"]

WIDTH = 320
HEIGHT = 80
_PAD = 4


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    #: "x,y x,y ..." for an SVG polyline; "" when there is nothing to draw
    points: str
    peak: str
    latest: str
    span: str
    width: int = WIDTH
    height: int = HEIGHT


def line_chart(title: str, at_ms: Sequence[int], values: Sequence[float | None], unit: str) -> Chart:
    """A chart of `values` over the times `at_ms` (gaps — None — are left out of the line)."""
    known = [(t, v) for t, v in zip(at_ms, values, strict=True) if v is not None]
    if len(known) < 2:
        return Chart(title, "", "-", _label(known[-1][1], unit) if known else "-", "not enough history yet")
    start, end = known[0][0], known[-1][0]
    peak = max(v for _, v in known) or 1.0
    width, height = WIDTH - 2 * _PAD, HEIGHT - 2 * _PAD
    coords = []
    for t, v in known:
        x = _PAD + width * (t - start) / max(1, end - start)
        y = _PAD + height * (1 - v / peak)
        coords.append(f"{x:.1f},{y:.1f}")
    seconds = (end - start) / 1000
    span = f"last {seconds:.0f} s" if seconds < 120 else f"last {seconds / 60:.0f} min"
    return Chart(title, " ".join(coords), _label(peak, unit), _label(known[-1][1], unit), span)


def _label(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"
    return f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"
