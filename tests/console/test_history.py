"""The console's history: one point per interval whatever the number of consoles, bounded, and the steps the
charts draw (rate and lag between neighbours, a worker restart counted from zero)."""

from __future__ import annotations

import math

import pytest
import redis

from processor.console.charts import line_chart
from processor.console.history import HISTORY_POINTS, Point, read_history, record, steps

INF = math.inf


def test_one_point_per_interval_and_a_bounded_list(redis_client: redis.Redis) -> None:
    # Given two consoles recording the same interval, then only the first point is kept
    assert record(redis_client, Point(60_000, runs={"h": 1.0}), 60_000)
    assert not record(redis_client, Point(60_500, runs={"h": 2.0}), 60_000)
    assert [p.runs for p in read_history(redis_client)] == [{"h": 1.0}]
    # When many intervals go by, then only the newest HISTORY_POINTS are kept, oldest first
    for i in range(2, HISTORY_POINTS + 10):
        assert record(redis_client, Point(i * 60_000, runs={"h": float(i)}), 60_000)
    kept = read_history(redis_client)
    assert len(kept) == HISTORY_POINTS
    assert kept[0].at_ms < kept[-1].at_ms
    assert kept[-1].runs == {"h": float(HISTORY_POINTS + 9)}


def test_a_point_survives_the_round_trip_with_its_infinite_bucket(redis_client: redis.Redis) -> None:
    point = Point(120_000, runs={"a": 3.0}, lag={0.1: 2.0, 1.0: 5.0, INF: 6.0}, pending={"a": 4})
    assert Point.decode(point.encode()) == point
    assert Point.decode(b"{not json") is None


def test_steps_are_rates_and_lag_quantiles_between_neighbours() -> None:
    points = [
        Point(0, runs={"a": 10.0, "b": 0.0}, lag={0.1: 10.0, 1.0: 10.0, INF: 10.0}, pending={"a": 1}),
        Point(60_000, runs={"a": 70.0, "b": 60.0}, lag={0.1: 10.0, 1.0: 130.0, INF: 130.0}, pending={"a": 3}),
        # a worker restarted: its counters start again from zero
        Point(120_000, runs={"a": 30.0, "b": 90.0}, lag={0.1: 0.0, 1.0: 0.0, INF: 0.0}, pending={}),
    ]
    first, second = steps(points)
    assert first.runs_per_s == pytest.approx(2.0)  # 60 + 60 runs in 60 s
    assert first.lag_p50_s is not None and 0.1 < first.lag_p50_s <= 1.0  # every new observation is in (0.1, 1]
    assert first.pending == 3
    assert second.runs_per_s == pytest.approx(1.0)  # a restarted from 0 to 30, b went 60 -> 90
    assert second.lag_p99_s is None  # no observation in that step


def test_a_chart_needs_two_points_and_scales_to_its_peak() -> None:
    assert line_chart("rate", [0], [1.0], "/s").points == ""
    chart = line_chart("rate", [0, 30_000, 60_000], [0.0, None, 2.0], "/s")
    assert chart.points.split() == ["4.0,76.0", "316.0,4.0"]  # the gap is left out; the peak touches the top
    assert (chart.peak, chart.latest, chart.span) == ("2.0/s", "2.0/s", "last 60 s")
