"""Summaries of repeated measurements: median and min-max, and percentiles of latency samples."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Measurements", "Summary", "percentile", "summarize"]


@dataclass(frozen=True, slots=True)
class Summary:
    """The median of a measurement over rounds, and its range."""

    median: float
    low: float
    high: float
    count: int


def summarize(values: Sequence[float]) -> Summary:
    """Median and min-max of `values` (NaN for none: a contender that produced no number)."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return Summary(math.nan, math.nan, math.nan, 0)
    return Summary(statistics.median(finite), min(finite), max(finite), len(finite))


def percentile(ordered: Sequence[float], q: float) -> float:
    """The `q` quantile (0..1) of already sorted samples, nearest rank; NaN when there are none."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(len(ordered), rank) - 1]


class Measurements:
    """Values by (contender, metric) and round, so ratios pair values of the same round only."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], dict[int, float]] = {}
        self.contenders: list[str] = []

    def add(self, contender: str, round_index: int, **metrics: float) -> None:
        if contender not in self.contenders:
            self.contenders.append(contender)
        for metric, value in metrics.items():
            self._values.setdefault((contender, metric), {})[round_index] = float(value)

    def values(self, contender: str, metric: str) -> list[float]:
        by_round = self._values.get((contender, metric), {})
        return [by_round[r] for r in sorted(by_round)]

    def summary(self, contender: str, metric: str) -> Summary:
        return summarize(self.values(contender, metric))

    def ratio(self, contender: str, reference: str, metric: str) -> Summary:
        """`contender / reference` of `metric`, computed within each round, then summarized over rounds."""
        mine = self._values.get((contender, metric), {})
        theirs = self._values.get((reference, metric), {})
        ratios = [mine[r] / theirs[r] for r in sorted(mine) if r in theirs and theirs[r] and not math.isnan(mine[r])]
        return summarize(ratios)

    def as_dict(self) -> dict[str, dict[str, dict[int, float]]]:
        out: dict[str, dict[str, dict[int, float]]] = {}
        for (contender, metric), by_round in self._values.items():
            out.setdefault(contender, {})[metric] = dict(by_round)
        return out
