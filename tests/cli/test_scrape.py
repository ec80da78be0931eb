"""Reading the workers' metrics for `hookyard stats`: lag quantiles as Prometheus computes them, and the sums over
labels `stats` does not show."""

from __future__ import annotations

import pytest

from processor.cli.scrape import parse, quantile


def test_quantiles_interpolate_like_prometheus() -> None:
    buckets = {0.1: 0.0, 0.5: 10.0, 1.0: 20.0, float("inf"): 20.0}

    assert quantile(0.5, buckets) == pytest.approx(0.5)
    assert quantile(0.25, buckets) == pytest.approx(0.3)
    assert quantile(0.99, buckets) == pytest.approx(0.99)
    assert quantile(0.5, {0.1: 0.0, float("inf"): 0.0}) is None
    assert quantile(0.99, {0.1: 1.0, float("inf"): 4.0}) == pytest.approx(0.1)  # in +Inf: the highest bound


def test_parse_sums_what_stats_does_not_split() -> None:
    text = (
        'hookyard_handler_runs_total{handler="a",outcome="ok"} 3\n'
        'hookyard_handler_runs_total{handler="a",outcome="retry"} 2\n'
        'hookyard_events_ingested_total{source="workos",outcome="new"} 4\n'
        'hookyard_events_ingested_total{source="staging",outcome="new"} 1\n'
    )

    reading = parse(text, 0.0)

    assert reading.runs == {"a": 5.0}
    assert reading.ingested == {"new": 5.0}
