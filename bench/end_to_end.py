"""The whole stack under a steady load: delivery lag, and memory after 100,000 events.

The receiver (as deployed) and the worker supervisor (2 workers, the bench handler in `lag` mode) share the
machine with the load generator; nothing is pinned. Each event is made, signed and sent at its due time, with
`created_at` = that moment, and the handler records completion minus `created_at`. Lag is measured twice at
the same rate: without hold-back (HOOKYARD_REORDER_WINDOW=0), whose workers then take the bulk of the 100,000
events for the memory reading (without a window nobody waits for the hold-back), then as deployed (5 s window).
"""

from __future__ import annotations

import collections
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.deliveries import EVENT_TYPE, SECRET, http_request, signed_delivery
from bench.handlers import DONE, LAG_MS
from bench.open_loop import LoadResult, closed_loop, open_loop
from bench.plan import Plan
from bench.processes import PYTHON, ROOT, Service, child_pids, command_line, rss_mib, wait_for_port
from bench.processor_bench import check_handlers, hookyard_env, processor_service
from bench.stats import percentile
from processor.devtools.embedded_redis import free_port
from processor.devtools.samples import sample_event
from shared import keys

__all__ = [
    "BULK_CONNECTIONS",
    "Children",
    "EndToEnd",
    "LagResult",
    "MemoryResult",
    "supervisor_children",
    "wait_for_workers",
]

#: Connections of the closed-loop bulk: enough to keep the receiver busy, few enough to leave the workers CPU.
BULK_CONNECTIONS = 16


@dataclass(frozen=True, slots=True)
class LagResult:
    window: str
    sent: int
    accepted: int
    handled: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    ack_p99_ms: float  # the receiver's answer, measured by the sender


@dataclass(frozen=True, slots=True)
class MemoryResult:
    receiver_requests: int
    worker_events: int
    bulk_sent: int
    bulk_accepted: int
    bulk_statuses: dict[int, int]  # answers other than 200, by status
    bulk_failed: int  # connection errors and requests unanswered at the end
    receiver_rss_mib: float
    worker_rss_mib: float  # the larger of the worker processes
    ingester_rss_mib: float  # the dedicated ingester process (NaN: none)
    supervisor_rss_mib: float


@dataclass(frozen=True, slots=True)
class Children:
    """The supervisor's children: handler-running workers, and the dedicated ingester if there is one."""

    workers: list[int]
    ingesters: list[int]


def supervisor_children(supervisor: Service) -> Children:
    workers: list[int] = []
    ingesters: list[int] = []
    for pid in child_pids(supervisor.pid):
        (ingesters if "--ingester" in command_line(pid) else workers).append(pid)
    return Children(workers, ingesters)


def wait_for_workers(client: redis.Redis, supervisor: Service, workers: int, timeout_s: float = 30.0) -> Children:
    """Wait until `workers` worker processes run and have swept once (their heartbeat is in Redis)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        children = supervisor_children(supervisor)
        # Heartbeat members are "<host>:<pid>".
        members = client.zrange(keys.WORKERS, 0, -1)
        alive = {(m.decode() if isinstance(m, bytes) else str(m)).rsplit(":", 1)[-1] for m in members}
        if len(children.workers) >= workers and all(str(pid) in alive for pid in children.workers):
            return children
        if not supervisor.running():
            break
        time.sleep(0.05)  # polling interval while the workers start
    raise RuntimeError(f"{workers} workers did not start; see {supervisor.log_path}")


class EndToEnd:
    def __init__(self, plan: Plan, workdir: Path, redis_url: str) -> None:
        self.plan = plan
        self.workdir = workdir
        self.redis_url = redis_url
        self.client = redis.Redis.from_url(redis_url)
        self.port = free_port()
        self.rng = random.Random(11)
        self.users = [f"directory_user_e2e{i:06d}" for i in range(plan.resources)]
        self.requests = 0
        self.commands: dict[str, str] = {}
        self.warnings: collections.Counter[str] = collections.Counter()

    def run(self) -> tuple[list[LagResult], MemoryResult]:
        self.client.flushall()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "REDIS_URL": self.redis_url,
            "WORKOS_WEBHOOK_SECRET": SECRET,
            "HOOKYARD_PORT": str(self.port),
            "HOOKYARD_LOG_FORMAT": "json",
        }
        receiver = Service("receiver", [PYTHON, "-m", "receiver"], env, self.workdir / "e2e-receiver.log",
                           shown_env=("HOOKYARD_LOG_FORMAT",))  # fmt: skip
        self.commands["receiver"] = receiver.command
        try:
            receiver.start()
            wait_for_port(self.port, process=receiver.process)
            no_window, memory = self._lag_and_memory(receiver)
            as_deployed = self._lag_run(None)
        finally:
            receiver.stop()
            self.client.close()
        return [no_window, as_deployed], memory

    def _processor(self, window: str | None) -> Service:
        env = hookyard_env(self.redis_url, workers=self.plan.workers, window=window, mode="lag")
        name = f"e2e-processor-window-{window or 'default'}"
        service = processor_service(name, env, self.workdir)
        self.commands.setdefault("processor", service.command)
        return service

    def _lag_run(self, window: str | None) -> LagResult:
        processor = self._processor(window)
        try:
            processor.start()
            wait_for_workers(self.client, processor, self.plan.workers)
            return self._measure_lag(window)
        finally:
            processor.stop(graceful=False)
            check_handlers(processor.log_path, 1)
            self.warnings.update(processor.warnings())

    def _lag_and_memory(self, receiver: Service) -> tuple[LagResult, MemoryResult]:
        processor = self._processor("0")
        try:
            processor.start()
            children = wait_for_workers(self.client, processor, self.plan.workers)
            lag = self._measure_lag("0")
            # The rest as fast as the receiver answers (closed loop), so exactly this many get through however
            # much CPU the workers leave it.
            load = self._send_all(self.plan.rss_events - lag.handled)
            handled = self._wait_handled(lag.handled + _accepted(load))
            return lag, MemoryResult(
                receiver_requests=self.requests,
                worker_events=handled,
                bulk_sent=load.offered,
                bulk_accepted=_accepted(load),
                bulk_statuses={status: n for status, n in load.statuses.items() if status != 200},
                bulk_failed=load.errors + load.incomplete,
                receiver_rss_mib=rss_mib(receiver.pid),
                worker_rss_mib=max(rss_mib(pid) for pid in children.workers),
                ingester_rss_mib=max((rss_mib(pid) for pid in children.ingesters), default=math.nan),
                supervisor_rss_mib=rss_mib(processor.pid),
            )
        finally:
            processor.stop(graceful=False)
            # A stopped ingester keeps the inbox lease until it expires (5 s); the next processor must not wait.
            self.client.delete(keys.INBOX_LEASE)
            check_handlers(processor.log_path, 1)
            self.warnings.update(processor.warnings())

    def _measure_lag(self, window: str | None) -> LagResult:
        self.client.delete(DONE, LAG_MS)
        load = self._send(self.plan.lag_rate, self.plan.lag_s)
        handled = self._wait_handled(_accepted(load))
        lags = sorted(float(v) for v in self.client.lrange(LAG_MS, 0, -1))
        return LagResult(
            window=window or "5s (default)",
            sent=load.offered,
            accepted=_accepted(load),
            handled=handled,
            p50_ms=percentile(lags, 0.50),
            p99_ms=percentile(lags, 0.99),
            max_ms=lags[-1] if lags else math.nan,
            ack_p99_ms=load.latency_ms(0.99),
        )

    def _fresh_request(self, _: int) -> bytes:
        # Made when it is sent: created_at and the signature are both "now", as WorkOS sends them.
        user = self.users[self.rng.randrange(len(self.users))]
        event = sample_event(EVENT_TYPE, rng=self.rng, resource_id=user)
        return http_request(signed_delivery(event), self.port)

    def _send(self, rate: float, duration_s: float) -> LoadResult:
        load = open_loop(self.port, self._fresh_request, rate=rate, duration_s=duration_s, connections=50)
        self.requests += load.offered
        return load

    def _send_all(self, count: int) -> LoadResult:
        load = closed_loop(self.port, self._fresh_request, total=count, connections=BULK_CONNECTIONS)
        self.requests += load.offered
        return load

    def _wait_handled(self, expected: int) -> int:
        deadline = time.monotonic() + self.plan.drain_timeout_s
        while True:
            handled = int(self.client.get(DONE) or 0)
            if handled >= expected or time.monotonic() > deadline:
                return handled
            time.sleep(0.05)  # polling interval while the workers catch up


def _accepted(load: LoadResult) -> int:
    return load.statuses.get(200, 0)
