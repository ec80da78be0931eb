"""Capacity under load: ingest throughput with 1 or 4 inbox shards and 1 or 2 dedicated ingester processes, and the
receiver's ack latency on the cluster with `HOOKYARD_MIN_REPLICAS` 0 and 1, variants interleaved round by round.

Ingest: the inbox shards are filled first (byte for byte what the receiver appends, each event in the shard the
receiver would pick), then the ingesters start; the rate is taken from the first message taken to the last, so the
start-up is left out. Ack latency: a fixed offered rate (open loop), latency from each request's due time.
"""

from __future__ import annotations

import functools
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.capacity import CapacityPlan, PhaseFailed, worker_service
from bench.capacity_stores import BenchStore
from bench.deliveries import EVENT_TYPE, SOURCE, http_request, inbox_messages, now_ms, signed_delivery
from bench.open_loop import LoadResult, open_loop
from bench.processes import Service, tree_cpu_seconds
from bench.processor_bench import hookyard_env
from bench.stats import Measurements, percentile
from processor.devtools.samples import sample_event
from shared.keys import inbox_shard

__all__ = ["INGEST_VARIANTS", "IngestBench", "IngestVariant", "ack_latency_round"]

_POLL_S = 0.01


@dataclass(frozen=True, slots=True)
class IngestVariant:
    store: str  # which store (BenchStore.kind)
    shards: int
    processes: int

    @property
    def name(self) -> str:
        return f"{self.store}/{self.shards}-shard/{self.processes}-proc"


INGEST_VARIANTS = (
    IngestVariant("single", 1, 1),
    IngestVariant("cluster", 1, 1),
    IngestVariant("cluster", 4, 1),
    IngestVariant("cluster", 1, 2),
    IngestVariant("cluster", 4, 2),
)


class IngestBench:
    def __init__(self, plan: CapacityPlan, workdir: Path, counter_url: str, measurements: Measurements) -> None:
        self.plan = plan
        self.workdir = workdir
        self.counter_url = counter_url
        self.measurements = measurements
        self.messages = list(
            inbox_messages(plan.ingest_events, resources=plan.ingest_events // 10, received_ms=now_ms())
        )
        self.routes = [_route(message) for message in self.messages]
        self.commands: dict[str, str] = {}

    def run(self, store: BenchStore, variant: IngestVariant, round_index: int) -> float:
        store.flush()
        for shard in range(variant.shards):
            store.push_inbox(
                shard,
                [
                    m
                    for m, r in zip(self.messages, self.routes, strict=True)
                    if inbox_shard(*r, variant.shards) == shard
                ],
            )
        env = hookyard_env(
            store.url,
            workers=1,
            window=None,
            extra={**store.env, "HOOKYARD_INBOX_SHARDS": str(variant.shards), "BENCH_COUNTER_URL": self.counter_url},
        )
        ingesters = [
            worker_service(f"{variant.name.replace('/', '-')}-{i}", env, self.workdir, ingester=True, cores=None)
            for i in range(variant.processes)
        ]
        self.commands.setdefault(variant.name, ingesters[0].command)
        try:
            for ingester in ingesters:
                ingester.start()  # after the fill: the drain is timed from the backlog whole
            rate, cpu_us = self._drain(store, variant, ingesters)
        finally:
            for ingester in ingesters:
                ingester.stop(graceful=False)
        self.measurements.add(variant.name, round_index, events_per_s=rate, cpu_us=cpu_us)
        return rate

    def _drain(self, store: BenchStore, variant: IngestVariant, ingesters: list[Service]) -> tuple[float, float]:
        """Events/s and ingest CPU µs per event, from the last poll that saw the backlog whole to the empty inbox
        (the ingesters' start-up left out)."""
        total = len(self.messages)
        deadline = time.monotonic() + self.plan.timeout_s
        idle = (time.perf_counter(), 0.0)
        while True:
            left = store.inbox_length(variant.shards)
            now = time.perf_counter()
            if left == 0:
                break
            if left == total:
                idle = (now, sum(tree_cpu_seconds(i.pid) for i in ingesters))
            if time.monotonic() > deadline or not all(i.running() for i in ingesters):
                errors = [i.last_error() for i in ingesters]
                raise PhaseFailed(f"{variant.name}: {left} of {total} still in the inbox; last errors: {errors}")
            time.sleep(_POLL_S)  # polling interval of the drain
        cpu = sum(tree_cpu_seconds(i.pid) for i in ingesters) - idle[1]
        seconds = now - idle[0]
        return (total / seconds if seconds > 0 else float("nan"), cpu * 1e6 / total)


def ack_latency_round(
    receivers: dict[int, int], plan: CapacityPlan, round_index: int, measurements: Measurements, store: BenchStore
) -> None:
    """One round of the MIN_REPLICAS comparison: `receivers` maps the setting to the receiver's port. Each gets a
    short warm-up, then the offered load runs in four slices, A B B A (B A A B the next round), so a neighbour's
    burst on this shared machine lands on both settings rather than on whichever ran at the time."""
    first, second = sorted(receivers) if round_index % 2 == 0 else sorted(receivers, reverse=True)
    rng = random.Random(round_index)
    requests = {
        s: http_request(signed_delivery(sample_event(EVENT_TYPE, rng=rng)), port) for s, port in receivers.items()
    }
    for setting in (first, second):
        _offer(receivers[setting], requests[setting], plan, min(1.0, plan.ack_s / 2))  # warm-up, not counted
    latencies: dict[int, list[float]] = {first: [], second: []}
    failed: dict[int, int] = {first: 0, second: 0}
    for setting in (first, second, second, first):
        result = _offer(receivers[setting], requests[setting], plan, plan.ack_s / 2)
        latencies[setting] += [*result.latencies_s, *[math.inf] * result.incomplete]
        failed[setting] += result.non_2xx + result.errors + result.incomplete
        store.flush()  # the duplicates appended, so the inbox stays small from slice to slice
    for setting, samples in latencies.items():
        samples.sort()
        measurements.add(
            f"min-replicas-{setting}",
            round_index,
            p50_ms=percentile(samples, 0.50) * 1000,
            p90_ms=percentile(samples, 0.90) * 1000,
            p99_ms=percentile(samples, 0.99) * 1000,
            non_2xx=failed[setting],
        )


def _offer(port: int, request: bytes, plan: CapacityPlan, duration_s: float) -> LoadResult:
    return open_loop(port, functools.partial(_same, request), rate=plan.ack_rate, duration_s=duration_s,
                     connections=plan.connections)  # fmt: skip


def _same(request: bytes, index: int) -> bytes:
    return request


def _route(message: bytes) -> tuple[str, str]:
    """The (source, event id) the receiver hashes to pick an inbox shard."""
    event = orjson.loads(message.partition(b"\n")[2])
    return SOURCE, str(event["id"])
