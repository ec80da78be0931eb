"""The "capacity" part of `python -m bench`: starts the two stores and the receivers once, runs the unit-cost
phases, the ingest variants and the ack-latency pair round by round, interleaved, and hands the record over to
bench/capacity_report.py (docs/capacity.md)."""

from __future__ import annotations

import dataclasses
import functools
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from bench.capacity import (
    FULL_CAPACITY,
    LOAD_CORE,
    QUICK_CAPACITY,
    CapacityPlan,
    UnitCostBench,
    start_receiver,
)
from bench.capacity_load import INGEST_VARIANTS, IngestBench, ack_latency_round
from bench.capacity_model import UnitCosts
from bench.capacity_stores import CLUSTER, SINGLE, BenchStore
from bench.processes import Service, pin
from bench.stats import Measurements
from processor.devtools.embedded_redis import EmbeddedRedis

T = TypeVar("T")

__all__ = ["CLUSTER_INBOX_SHARDS", "CapacityRecord", "run_capacity", "unit_costs"]

#: Inbox shards of the cluster store in the unit-cost phases: more than its primaries, so each primary has one.
CLUSTER_INBOX_SHARDS = 4


@dataclass
class CapacityRecord:
    plan: CapacityPlan
    units: Measurements = field(default_factory=Measurements)
    ingest: Measurements = field(default_factory=Measurements)
    ack: Measurements = field(default_factory=Measurements)
    commands: dict[str, str] = field(default_factory=dict)
    primaries: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def run_capacity(quick: bool, rounds: int | None, workdir: Path, log: Callable[[str], None]) -> CapacityRecord:
    plan = QUICK_CAPACITY if quick else FULL_CAPACITY
    if rounds:
        plan = dataclasses.replace(plan, rounds=rounds)
    record = CapacityRecord(plan)
    started = time.monotonic()
    stores = {
        SINGLE: BenchStore(SINGLE, workdir / "capacity", inbox_shards=1),
        CLUSTER: BenchStore(CLUSTER, workdir / "capacity", inbox_shards=CLUSTER_INBOX_SHARDS),
    }
    counter = EmbeddedRedis(workdir / "capacity" / "counter")
    receivers: dict[str, tuple[Service, int]] = {}
    all_cores = set(range(os.cpu_count() or 1))
    try:
        counter.start()
        for store in stores.values():
            store.start()
            for pid in store.pids():
                pin(pid, {LOAD_CORE})
        pin(0, {LOAD_CORE})
        record.primaries = len(stores[CLUSTER].primaries)
        for name, store, replicas in (
            (SINGLE, stores[SINGLE], 0),
            (CLUSTER, stores[CLUSTER], 0),
            ("cluster-wait", stores[CLUSTER], 1),
        ):
            env = {**store.env, "HOOKYARD_MIN_REPLICAS": str(replicas)}
            receivers[name] = start_receiver(f"receiver-{name}", env, workdir)
            record.commands[f"receiver/{name}"] = receivers[name][0].command
        _rounds(plan, stores, receivers, counter, record, log)
    finally:
        for service, _ in receivers.values():
            service.stop()
        for store in stores.values():
            store.stop()
        counter.stop()
        pin(0, all_cores)
    record.seconds = time.monotonic() - started
    return record


def _rounds(
    plan: CapacityPlan,
    stores: dict[str, BenchStore],
    receivers: dict[str, tuple[Service, int]],
    counter: EmbeddedRedis,
    record: CapacityRecord,
    log: Callable[[str], None],
) -> None:
    units = UnitCostBench(plan, receivers[SINGLE][0].log_path.parent, counter, record.units)
    ingest = IngestBench(plan, units.workdir, counter.url, record.ingest)
    ack_ports = {0: receivers[CLUSTER][1], 1: receivers["cluster-wait"][1]}
    for round_index in range(plan.rounds):
        order = [SINGLE, CLUSTER] if round_index % 2 == 0 else [CLUSTER, SINGLE]
        for kind in order:
            service, port = receivers[kind]
            unit_run = functools.partial(units.run, stores[kind], service, port, round_index)
            _attempt(record, f"unit costs on {kind}", log, unit_run)
            log(f"capacity round {round_index + 1}: unit costs on {kind}")
        for variant in INGEST_VARIANTS:
            ingest_run = functools.partial(ingest.run, stores[variant.store], variant, round_index)
            rate = _attempt(record, variant.name, log, ingest_run)
            log(f"capacity round {round_index + 1}: ingest {variant.name} {rate or 0:,.0f} events/s")
        ack_run = functools.partial(ack_latency_round, ack_ports, plan, round_index, record.ack, stores[CLUSTER])
        _attempt(record, "ack latency", log, ack_run)
        log(f"capacity round {round_index + 1}: ack latency, HOOKYARD_MIN_REPLICAS 0 and 1")
    record.commands |= units.commands | ingest.commands


def _attempt(record: CapacityRecord, what: str, log: Callable[[str], None], step: Callable[[], T]) -> T | None:
    try:
        return step()
    except Exception as exc:
        # One failed run is reported, as no number, without throwing the other variants' numbers away.
        log(f"capacity: {what} failed:\n{traceback.format_exc()}")
        record.failures.append(f"{what}: {type(exc).__name__}: {exc}")
        return None


def unit_costs(record: CapacityRecord) -> UnitCosts:
    """The cluster's measured costs (medians over rounds), as the model's inputs."""
    units = record.units

    def median(phase: str, metric: str) -> float:
        return units.summary(f"{CLUSTER}/{phase}", metric).median

    return UnitCosts(
        receiver_cpu_us=median("receive", "process_cpu_us"),
        ingest_cpu_us=median("ingest", "process_cpu_us"),
        worker_cpu_us=median("run", "process_cpu_us"),
        redis_inbox_cpu_us=median("receive", "redis_cpu_us"),
        redis_state_cpu_us=median("ingest", "redis_cpu_us") + median("run", "redis_cpu_us"),
        shard_events_per_s=record.ingest.summary(INGEST_VARIANTS[1].name, "events_per_s").median,
        pending_bytes=median("memory", "pending_bytes"),
        handled_bytes=median("memory", "handled_bytes"),
    )
