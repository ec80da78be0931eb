"""The capacity model: from measured unit costs to the receiver cores, ingest processes and shards, worker cores,
cluster primaries and Redis memory a given event rate needs. A pure function of its inputs (docs/capacity.md).

Per component, units = rate * cost per event / (capacity of one unit * target utilisation), rounded up:

- receiver and worker cores: CPU µs per event (per handler run for workers) against 1e6 µs per core-second;
- ingest: one process is GIL-bound (≤ 1 core), and one inbox shard is drained by one lease holder at a time, so
  processes = rate * ingest µs / 1e6 / util and shards ≥ rate / (one shard's measured rate * util);
- Redis primaries: Redis runs commands on one thread, so the busiest primary decides. The inbox part of the Redis
  time spreads over the inbox shards (placed one per primary or more); the rest is per pair and event, keyed by
  Hookyard's `SHARDS` state tags (`{hy:0}` … `{hy:15}`), so one primary carries at least one tag's share: with
  P primaries and the tags placed evenly (a resharding by tag, see docs/operations.md), ceil(SHARDS / P) / SHARDS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "CORE_US_PER_S",
    "ComponentNeed",
    "Sizing",
    "UnitCosts",
    "busiest_share",
    "primaries_ceiling",
    "size_for",
]

CORE_US_PER_S = 1e6  # one core, fully busy, for a second


@dataclass(frozen=True, slots=True)
class UnitCosts:
    """Measured costs per event (µs of CPU, bytes), the inputs of the model."""

    receiver_cpu_us: float  # receiver process, per event acknowledged
    ingest_cpu_us: float  # dedicated ingester process, per event admitted
    worker_cpu_us: float  # worker processes, per handler run
    redis_inbox_cpu_us: float  # Redis, summed over primaries: the append and the ingester's pop, per event
    redis_state_cpu_us: float  # Redis, summed over primaries: admission and the handler run, per event
    shard_events_per_s: float  # what one inbox shard drains at, one ingester holding its lease
    pending_bytes: float  # Redis memory per event admitted and not yet handled (held for the window)
    handled_bytes: float  # Redis memory per event handled (dedupe marker and archive, held for retention)

    @property
    def redis_cpu_us(self) -> float:
        return self.redis_inbox_cpu_us + self.redis_state_cpu_us


@dataclass(frozen=True, slots=True)
class ComponentNeed:
    name: str
    units: int | None  # None: not reachable within the hard limit
    unit: str
    utilisation: float  # of each unit, at that many units (the busiest one for Redis)
    ceiling: float = math.inf  # events/s past which no number of units helps (a hard limit of the design)

    @property
    def load(self) -> float:
        """How many units' worth of work there is, as a fraction: units x utilisation (busiest unit for Redis)."""
        return (self.units or 0) * self.utilisation


@dataclass(frozen=True, slots=True)
class Sizing:
    rate: float
    receiver: ComponentNeed
    ingest_processes: ComponentNeed
    inbox_shards: ComponentNeed
    worker: ComponentNeed
    primaries: ComponentNeed
    window_bytes: float  # events held during the reorder window, Redis memory over the whole cluster
    retention_bytes: float  # events handled and kept for the retention window
    first: str  # the component that saturates first at this rate (see `size_for`)

    @property
    def needs(self) -> tuple[ComponentNeed, ...]:
        return (self.receiver, self.ingest_processes, self.inbox_shards, self.worker, self.primaries)


def busiest_share(primaries: int, state_shards: int) -> float:
    """The share of the per-pair Redis work the busiest of `primaries` carries, state tags placed evenly."""
    return math.ceil(state_shards / primaries) / state_shards


def _cores(name: str, rate: float, cost_us: float, util: float) -> ComponentNeed:
    load = rate * cost_us / CORE_US_PER_S
    units = max(1, math.ceil(load / util))
    return ComponentNeed(name, units, "cores", load / units)


def primaries_ceiling(costs: UnitCosts, util: float, state_shards: int) -> float:
    """The most events/s a cluster serves: one primary per state tag, the inbox spread as widely."""
    return util * CORE_US_PER_S * state_shards / costs.redis_cpu_us


def _primaries(rate: float, costs: UnitCosts, util: float, state_shards: int, max_primaries: int) -> ComponentNeed:
    # A primary beyond the number of state tags gets no per-pair work: at most `state_shards` share it.
    for primaries in range(1, min(max_primaries, state_shards) + 1):
        load = (
            rate
            / CORE_US_PER_S
            * (costs.redis_inbox_cpu_us / primaries + costs.redis_state_cpu_us * busiest_share(primaries, state_shards))
        )
        if load <= util:
            return ComponentNeed(
                "Redis primaries", primaries, "primaries", load, primaries_ceiling(costs, util, state_shards)
            )
    load = rate / CORE_US_PER_S * costs.redis_state_cpu_us / state_shards
    return ComponentNeed("Redis primaries", None, "primaries", load, primaries_ceiling(costs, util, state_shards))


def size_for(
    rate: float,
    costs: UnitCosts,
    *,
    handlers: int = 1,
    util: float = 0.7,
    window_s: float = 5.0,
    retention_s: float = 7 * 86400.0,
    state_shards: int = 16,
    max_inbox_shards: int = 64,
    max_primaries: int = 1000,
) -> Sizing:
    """What `rate` events/s (each run by `handlers` handlers) needs, every unit at most `util` busy.

    `first` names what saturates first: past a hard limit of the design, the component whose limit is the lowest
    rate; else the one with the most work in units (cores or primaries: inbox shards are not machines), i.e. the
    one that runs out first on a fixed budget of units."""
    receiver = _cores("receiver", rate, costs.receiver_cpu_us, util)
    worker = _cores("workers", rate, costs.worker_cpu_us * handlers, util)
    ingest = _cores("ingest processes", rate, costs.ingest_cpu_us, util)
    ingest = ComponentNeed(ingest.name, ingest.units, "processes (1 core each)", ingest.utilisation)
    wanted_shards = max(ingest.units or 1, math.ceil(rate / (costs.shard_events_per_s * util)))
    shard_load = rate / (costs.shard_events_per_s * wanted_shards)
    shards = ComponentNeed(
        "inbox shards",
        wanted_shards if wanted_shards <= max_inbox_shards else None,
        "shards",
        shard_load,
        max_inbox_shards * costs.shard_events_per_s * util,
    )
    primaries = _primaries(rate, costs, util, state_shards, max_primaries)
    needs = (receiver, ingest, shards, worker, primaries)
    unreachable = [need for need in needs if need.units is None]
    biggest = max((receiver, ingest, worker, primaries), key=lambda need: need.load)
    first = min(unreachable, key=lambda need: need.ceiling) if unreachable else biggest
    return Sizing(
        rate=rate,
        receiver=receiver,
        ingest_processes=ingest,
        inbox_shards=shards,
        worker=worker,
        primaries=primaries,
        window_bytes=rate * window_s * costs.pending_bytes,
        retention_bytes=rate * retention_s * costs.handled_bytes,
        first=first.name,
    )
