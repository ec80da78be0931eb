"""Capacity, measured: the unit costs of one event on one Redis server and on a Redis Cluster, side by side.

Per store and round, the same stack as deployed handles `events` distinct signed deliveries in three phases, each
measured on its own: the receiver acknowledges them (closed loop), one dedicated ingester admits them, one worker
process runs the handler on each (default 5 s reorder window). Per phase: the process's CPU from /proc, and per
Redis node the `INFO commandstats` and `INFO cpu` differences. The process under test is pinned to one core, the
Redis nodes and the load generator to the other. bench/capacity_load.py has the ingest throughput and ack latency
runs; bench/capacity_model.py turns the unit costs into a sizing.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.capacity_stores import BenchStore
from bench.deliveries import EVENT_TYPE, SECRET, http_request, signed_delivery
from bench.handlers import DONE
from bench.open_loop import closed_loop
from bench.processes import PYTHON, Service, cpu_seconds, tree_cpu_seconds, wait_for_port
from bench.processor_bench import hookyard_env
from bench.redis_stats import Snapshot, snapshot
from bench.stats import Measurements
from processor.devtools.embedded_redis import EmbeddedRedis, free_port
from processor.devtools.samples import sample_event

__all__ = [
    "LOAD_CORE",
    "SERVER_CORE",
    "CapacityPlan",
    "UnitCostBench",
    "receiver_service",
    "start_receiver",
    "worker_service",
]

SERVER_CORE = 0
LOAD_CORE = 1
_POLL_S = 0.01


@dataclass(frozen=True, slots=True)
class CapacityPlan:
    rounds: int
    events: int  # distinct events per store and round (unit costs)
    resources: int
    connections: int
    ingest_events: int  # backlog per ingest-throughput run
    ack_rate: float  # offered req/s for the ack-latency runs
    ack_s: float
    timeout_s: float


FULL_CAPACITY = CapacityPlan(
    rounds=3,
    events=6000,
    resources=600,
    connections=50,
    ingest_events=20_000,
    ack_rate=300.0,
    ack_s=8.0,
    timeout_s=180.0,
)
# Large enough that every phase uses several of /proc's 10 ms CPU ticks: a phase under one tick would measure 0 µs
# and leave the model without a unit cost.
QUICK_CAPACITY = CapacityPlan(
    rounds=1, events=1500, resources=150, connections=20, ingest_events=1500, ack_rate=100.0, ack_s=1.0, timeout_s=30.0
)


class PhaseFailed(RuntimeError):
    """A phase did not finish in time, or its process died."""


def receiver_service(name: str, env: dict[str, str], workdir: Path, port: int) -> Service:
    env = {
        **os.environ,
        **env,
        "WORKOS_WEBHOOK_SECRET": SECRET,
        "HOOKYARD_PORT": str(port),
        "HOOKYARD_LOG_FORMAT": "json",
    }
    env.pop("HOOKYARD_LOG_LEVEL", None)  # info, as deployed
    shown = ("REDIS_URL", "HOOKYARD_BROKER_URL", "HOOKYARD_INBOX_SHARDS", "HOOKYARD_MIN_REPLICAS")
    return Service(name, [PYTHON, "-m", "receiver"], env, workdir / f"{name}.log", cores={SERVER_CORE}, shown_env=shown)


def worker_service(name: str, env: dict[str, str], workdir: Path, *, ingester: bool, cores: set[int] | None) -> Service:
    """`python -m processor.worker [--ingester]`: one worker process (8 threads) or one dedicated ingester."""
    argv = [PYTHON, "-m", "processor.worker", *(["--ingester"] if ingester else [])]
    shown = ("REDIS_URL", "HOOKYARD_BROKER_URL", "HOOKYARD_INBOX_SHARDS", "BENCH_COUNTER_URL")
    return Service(name, argv, env, workdir / f"{name}.log", cores=cores, shown_env=shown)


@dataclass(frozen=True, slots=True)
class Phase:
    """What one phase cost: events done, wall seconds, the process's CPU seconds, and Redis per node."""

    events: int
    seconds: float
    cpu_s: float
    redis: Snapshot


class UnitCostBench:
    """The three phases on one store; `counter` holds the bench handlers' counter."""

    def __init__(self, plan: CapacityPlan, workdir: Path, counter: EmbeddedRedis, measurements: Measurements) -> None:
        self.plan = plan
        self.workdir = workdir
        self.counter = counter
        self.measurements = measurements
        self.rng = random.Random(11)
        self.commands: dict[str, str] = {}

    def processing_env(self, store_env: dict[str, str]) -> dict[str, str]:
        extra = {**store_env, "BENCH_COUNTER_URL": self.counter.url}
        return hookyard_env(store_env["REDIS_URL"], workers=1, window=None, extra=extra)

    def run(self, store: BenchStore, receiver: Service, port: int, round_index: int) -> None:
        store.flush()
        counter = redis.Redis.from_url(self.counter.url)
        try:
            counter.flushall()
            base = _memory(store)
            receive = self._receive(store, receiver, port, self._requests(port))
            ingest = self._ingest(store, receive.events)
            pending = _memory(store) - base  # admitted, held for the window or waiting for a worker
            worker = worker_service(
                f"{store.kind}-worker",
                self.processing_env(store.env),
                self.workdir,
                ingester=False,
                cores={SERVER_CORE},
            )
            self.commands.setdefault(f"{store.kind}/worker", worker.command)
            try:
                run = self._measure(
                    store, worker, receive.events, lambda: int(counter.get(DONE) or 0), counting_up=True
                )
            finally:
                worker.stop(graceful=False)
            handled = _memory(store) - base
        finally:
            counter.close()
        for phase_name, phase in (("receive", receive), ("ingest", ingest), ("run", run)):
            self._record(store, f"{store.kind}/{phase_name}", round_index, phase)
        self.measurements.add(
            f"{store.kind}/memory",
            round_index,
            pending_bytes=pending / receive.events,
            handled_bytes=handled / receive.events,
        )

    # --- phases ---------------------------------------------------------------------------------------------

    def _requests(self, port: int) -> list[bytes]:
        users = [f"directory_user_cap{i:06d}" for i in range(self.plan.resources)]
        return [
            http_request(
                signed_delivery(sample_event(EVENT_TYPE, rng=self.rng, resource_id=self.rng.choice(users))), port
            )
            for _ in range(self.plan.events)
        ]

    def _receive(self, store: BenchStore, receiver: Service, port: int, requests: list[bytes]) -> Phase:
        store.polls.clear()
        before, cpu_before, started = snapshot(store.all_ports), cpu_seconds(receiver.pid), time.perf_counter()
        load = closed_loop(
            port, lambda i: requests[i % len(requests)], total=len(requests), connections=self.plan.connections
        )
        accepted = sum(n for status, n in load.statuses.items() if 200 <= status < 300)
        if accepted < len(requests):
            raise PhaseFailed(f"{store.kind} receiver: {accepted} of {len(requests)} acknowledged ({load.statuses})")
        deadline = time.monotonic() + self.plan.timeout_s
        while store.inbox_length(store.inbox_shards) < accepted:  # the appends are batched behind the 200s
            if time.monotonic() > deadline:
                raise PhaseFailed(f"{store.kind} receiver: appends missing after {self.plan.timeout_s} s")
            time.sleep(_POLL_S)  # polling interval while the last batch is written
        seconds = time.perf_counter() - started
        cpu = cpu_seconds(receiver.pid) - cpu_before
        used = snapshot(store.all_ports).minus(before).discount(dict(store.polls), "llen")
        return Phase(accepted, seconds, cpu, used)

    def _ingest(self, store: BenchStore, events: int) -> Phase:
        env = self.processing_env(store.env)
        ingester = worker_service(f"{store.kind}-ingester", env, self.workdir, ingester=True, cores={SERVER_CORE})
        self.commands.setdefault(f"{store.kind}/ingester", ingester.command)
        try:
            phase = self._measure(
                store, ingester, events, lambda: store.inbox_length(store.inbox_shards), counting_up=False
            )
        finally:
            ingester.stop(graceful=False)
        return phase

    def _measure(
        self, store: BenchStore, service: Service, events: int, progress: Callable[[], int], *, counting_up: bool
    ) -> Phase:
        """Start `service` and measure it to the last event. Process CPU and time run from the last poll that saw
        no event done (start-up, imports and connections, left out); Redis from the start (it sees little of it)."""
        store.polls.clear()
        before = snapshot(store.all_ports)
        service.start()
        deadline = time.monotonic() + self.plan.timeout_s
        idle = (time.perf_counter(), 0.0)
        while True:
            value = progress()
            done = value if counting_up else events - value
            now = time.perf_counter()
            if done >= events:
                break
            if done == 0:
                idle = (now, tree_cpu_seconds(service.pid))
            if time.monotonic() > deadline or not service.running():
                raise PhaseFailed(f"{service.name}: {done} of {events} done; last error: {service.last_error()}")
            time.sleep(_POLL_S)  # polling interval of the drain
        cpu = tree_cpu_seconds(service.pid) - idle[1]
        used = snapshot(store.all_ports).minus(before).discount(dict(store.polls), "llen")
        return Phase(events, now - idle[0], cpu, used)

    def _record(self, store: BenchStore, name: str, round_index: int, phase: Phase) -> None:
        per = 1e6 / phase.events if phase.events else float("nan")
        metrics = {
            "events_per_s": phase.events / phase.seconds if phase.seconds else float("nan"),
            "process_cpu_us": phase.cpu_s * per,
            "redis_cpu_us": phase.redis.cpu_s(store.primaries) * per,
            "redis_commands": phase.redis.total_calls(store.primaries) / phase.events,
            "replica_cpu_us": phase.redis.cpu_s(store.replicas) * per,
        }
        if store.broker_port is not None:
            metrics["broker_cpu_us"] = phase.redis.cpu_s([store.broker_port]) * per
            metrics["broker_commands"] = phase.redis.total_calls([store.broker_port]) / phase.events
        for index, port in enumerate(store.primaries):
            metrics[f"primary{index}_cpu_us"] = phase.redis.cpu_s([port]) * per
            metrics[f"primary{index}_commands"] = phase.redis.total_calls([port]) / phase.events
        scripts = phase.redis.calls(store.primaries)
        metrics["script_calls"] = sum(n for cmd, n in scripts.items() if cmd in ("evalsha", "eval", "fcall")) / (
            phase.events
        )
        self.measurements.add(name, round_index, **metrics)


def _memory(store: BenchStore) -> int:
    """used_memory summed over the store's primaries."""
    return sum(node.used_memory for node in snapshot(store.primaries).nodes.values())


def start_receiver(name: str, env: dict[str, str], workdir: Path) -> tuple[Service, int]:
    port = free_port()
    service = receiver_service(name, env, workdir, port).start()
    wait_for_port(port, process=service.process)
    return service, port
