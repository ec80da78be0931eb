"""Summaries and same-round ratios (bench/stats.py)."""

from __future__ import annotations

import math

from bench.stats import Measurements, percentile, summarize


def test_summary_is_median_and_range_ignoring_missing_values() -> None:
    summary = summarize([3.0, math.nan, 1.0, 2.0])

    assert (summary.median, summary.low, summary.high, summary.count) == (2.0, 1.0, 3.0, 3)


def test_ratios_pair_values_of_the_same_round() -> None:
    # Given a noisy round 1 that slowed both contenders alike
    m = Measurements()
    m.add("a", 0, rps=100.0)
    m.add("b", 0, rps=200.0)
    m.add("a", 1, rps=10.0)
    m.add("b", 1, rps=20.0)
    m.add("a", 2, rps=300.0)  # b has no number in round 2

    # When the ratio is taken
    ratio = m.ratio("a", "b", "rps")

    # Then each round is compared with itself, never across rounds
    assert (ratio.median, ratio.low, ratio.high, ratio.count) == (0.5, 0.5, 0.5, 2)


def test_percentile_is_nearest_rank() -> None:
    samples = [float(i) for i in range(1, 101)]

    assert percentile(samples, 0.50) == 50.0
    assert percentile(samples, 0.99) == 99.0
    assert percentile(samples, 1.0) == 100.0
    assert math.isnan(percentile([], 0.5))
