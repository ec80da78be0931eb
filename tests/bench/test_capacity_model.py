"""The capacity model (bench/capacity_model.py): unit costs in, cores, shards, primaries and memory out."""

from __future__ import annotations

import pytest

from bench.capacity_model import UnitCosts, busiest_share, primaries_ceiling, size_for
from bench.capacity_report import sizing_table

COSTS = UnitCosts(
    receiver_cpu_us=100.0,
    ingest_cpu_us=50.0,
    worker_cpu_us=400.0,
    redis_inbox_cpu_us=40.0,
    redis_state_cpu_us=560.0,
    shard_events_per_s=5000.0,
    pending_bytes=4000.0,
    handled_bytes=3000.0,
)


def test_cores_are_rate_times_cost_over_a_core_at_the_target_utilisation() -> None:
    # Given 10,000 events/s with one handler, at 70 % utilisation
    # When the model sizes it
    sizing = size_for(10_000, COSTS, util=0.7)

    # Then receiver cores = 10,000 x 100 µs / 1e6 / 0.7 = 1.43 -> 2, each 50 % busy
    assert sizing.receiver.units == 2
    assert sizing.receiver.utilisation == pytest.approx(0.5)
    # And worker cores = 10,000 x 400 µs / 1e6 / 0.7 = 5.7 -> 6
    assert sizing.worker.units == 6
    assert sizing.worker.utilisation == pytest.approx(4.0 / 6)
    # And one ingest process (0.5 core) but 3 shards (10,000 / (5,000 x 0.7) = 2.86)
    assert sizing.ingest_processes.units == 1
    assert sizing.inbox_shards.units == 3


def test_handlers_multiply_the_worker_cost() -> None:
    sizing = size_for(1_000, COSTS, handlers=5, util=0.5)

    # 1,000 x 5 x 400 µs = 2 cores of work; at 50 %: 4 cores
    assert sizing.worker.units == 4
    assert sizing.worker.utilisation == pytest.approx(0.5)


def test_primaries_are_set_by_the_busiest_one_and_the_state_tags() -> None:
    # Given the 16 state tags placed evenly: 4 primaries carry 4 tags each, 5 still leave one with 4
    assert busiest_share(4, 16) == pytest.approx(0.25)
    assert busiest_share(5, 16) == pytest.approx(0.25)
    assert busiest_share(16, 16) == pytest.approx(1 / 16)

    # When 4,000 events/s need Redis: busiest primary with P = 4 is 4,000 x (40/4 + 560 x 0.25) / 1e6 = 0.60
    sizing = size_for(4_000, COSTS, util=0.7)

    # Then 4 primaries, the busiest at 60 % (3 would carry 6 tags: 4,000 x (40/3 + 560 x 6/16) / 1e6 = 0.89)
    assert sizing.primaries.units == 4
    assert sizing.primaries.utilisation == pytest.approx(0.60)


def test_a_rate_past_the_state_tags_is_not_reachable_and_saturates_first() -> None:
    # Given 100,000 events/s: one tag alone is 100,000 x 560 / 16 / 1e6 = 3.5 primaries' worth
    sizing = size_for(100_000, COSTS, util=0.7)

    # Then no number of primaries serves it, and that is what saturates first
    assert sizing.primaries.units is None
    assert sizing.primaries.utilisation == pytest.approx(3.5)
    assert sizing.first == "Redis primaries"
    # And the shards needed (100,000 / 3,500 = 29) are within the 64 allowed
    assert sizing.inbox_shards.units == 29


def test_memory_is_rate_times_window_times_bytes() -> None:
    sizing = size_for(1_000, COSTS, window_s=5.0, retention_s=3600.0)

    assert sizing.window_bytes == pytest.approx(1_000 * 5 * 4000)
    assert sizing.retention_bytes == pytest.approx(1_000 * 3600 * 3000)


def test_the_busiest_component_saturates_first_when_all_are_reachable() -> None:
    # Given a cheap Redis: the workers are the biggest consumer of cores
    cheap_redis = UnitCosts(100.0, 50.0, 400.0, 4.0, 56.0, 5000.0, 4000.0, 3000.0)

    sizing = size_for(10_000, cheap_redis, util=0.7)

    assert sizing.primaries.units == 1
    assert sizing.first == "workers"


def test_the_table_has_a_column_per_rate_and_a_row_per_component() -> None:
    table = sizing_table(COSTS, rates=(1_000.0, 100_000.0), util=0.7)

    assert table[0] == "|  | 1,000 events/s | 100,000 events/s |"
    rows = {line.split(" | ")[0].removeprefix("| "): line for line in table[2:]}
    # 1,000 x 100 µs = 0.1 core; 100,000 x 100 µs = 10 cores -> 15 at 67 %
    assert rows["receiver cores"] == "| receiver cores | 1 (10%) | 15 (67%) |"
    assert "**not reachable**" in rows["Redis primaries (busiest one's CPU)"]
    assert rows["saturates first"].endswith("| Redis primaries |")


def test_past_two_hard_limits_the_lower_one_saturates_first() -> None:
    # Given costs where a cluster tops out at 0.7 x 1e6 x 16 / 600 = 18,667 events/s and 64 shards at 224,000
    assert primaries_ceiling(COSTS, 0.7, 16) == pytest.approx(18_666.7, rel=1e-4)

    # When 300,000 events/s are asked for, past both
    sizing = size_for(300_000, COSTS, util=0.7)

    # Then both are unreachable, and Redis, whose limit is the lower rate, is what saturates first
    assert sizing.primaries.units is None and sizing.inbox_shards.units is None
    assert sizing.inbox_shards.ceiling == pytest.approx(64 * 5000 * 0.7)
    assert sizing.first == "Redis primaries"

    # And with slow shards (100 events/s each: 4,480 at most) and a cheap Redis, the shards are
    slow_shards = UnitCosts(100.0, 50.0, 400.0, 0.4, 5.6, 100.0, 4000.0, 3000.0)
    assert size_for(10_000, slow_shards, util=0.7).first == "inbox shards"
