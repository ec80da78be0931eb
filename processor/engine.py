"""One worker process's processor, wired: Redis store, ingester, runner, the Dramatiq actor that carries
wake-ups, and the background loops (ingest, sweep, lease renewal) that a Dramatiq middleware starts with the
worker.

Dramatiq messages only say "look at these pairs now": losing one costs latency (the sweep re-sends it after
the wake grace), doubling one costs a no-op claim. Correctness lives in Redis (processor/store.py).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from redis.backoff import NoBackoff
from redis.retry import Retry

from processor.handlers import Registry
from processor.ingest import Ingester
from processor.leases import LeaseKeeper
from processor.metrics import WorkerMetrics
from processor.records import StoreTimings
from processor.runner import Runner
from processor.store import Store
from shared import keys
from shared.errors import StoreUnavailable
from shared.logging import get_logger
from shared.settings import Settings

__all__ = ["ACTOR_NAME", "Engine", "ProcessorLoops", "wall_ms"]

log = get_logger("hookyard.engine")

ACTOR_NAME = "hookyard.run_pairs"
_MAX_PAIRS_PER_MESSAGE = 32
_TRIM_LETTERS_EVERY_S = 30.0


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def redis_client(url: str) -> redis.Redis:
    # No automatic retries: a retried command whose reply was lost may have run twice; every step here is safe
    # to repeat at a higher level (the loops and the sweep), where we can see it happen.
    return redis.Redis.from_url(
        url,
        socket_timeout=10,
        socket_connect_timeout=2,
        health_check_interval=15,
        retry=Retry(NoBackoff(), 0),
    )


class Engine:
    """Everything a worker process needs to ingest and run events."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        metrics: WorkerMetrics | None = None,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        self.clock_ms = clock_ms
        self.client = redis_client(settings.redis_url)
        self.timings = StoreTimings.from_settings(settings)
        self.store = Store(self.client, self.timings)
        self.broker = RedisBroker(  # type: ignore[no-untyped-call]
            client=redis_client(settings.redis_url), namespace=keys.WAKE_NAMESPACE, middleware=[]
        )
        self.actor: dramatiq.Actor[Any, Any] = dramatiq.Actor(
            self._run_pairs,
            broker=self.broker,
            actor_name=ACTOR_NAME,
            queue_name=keys.WAKE_QUEUE_NAME,
            priority=0,
            options={},
        )
        self.lease_keeper = LeaseKeeper(self.store, clock_ms, settings.lease_s)
        # The ingest lease outlives the client's socket timeout, so one slow admit is not a takeover.
        self.ingester = Ingester(
            self.store,
            registry,
            clock_ms=clock_ms,
            metrics=metrics,
            lease_ms=self.timings.lease_ms + 5000,
            future_tolerance_ms={name: int(src.tolerance_s * 1000) for name, src in settings.sources.items()},
        )
        self.runner = Runner(
            self.store,
            registry,
            clock_ms=clock_ms,
            send_wake=self.send_wake,
            lease_keeper=self.lease_keeper,
            metrics=metrics,
            handoff_after_s=settings.handoff_after_s,
            letter_retention_ms=self.timings.letter_retention_ms,
        )
        self.loops = ProcessorLoops(self)
        self.broker.add_middleware(self.loops)

    def _run_pairs(self, shard: int, pids: list[str]) -> None:
        try:
            self.runner.run_pairs(shard, pids)  # the count is for tests and the harness
        except StoreUnavailable as exc:
            # A claim taken stays leased until it expires; the sweep then hands it (and the pairs this wake-up
            # had not started) to a runner again.
            log.warning("run.store_unavailable", shard=shard, pairs=len(pids), error=str(exc)[:200])

    def send_wake(self, wake: list[tuple[int, str]], sender: str) -> None:
        """Send wake-ups for (shard, pair) items, a few pairs per message so threads share the work."""
        by_shard: dict[int, list[str]] = defaultdict(list)
        for shard, pid in wake:
            by_shard[shard].append(pid)
        threads = self.settings.worker_threads
        for shard, pids in by_shard.items():
            size = max(1, min(_MAX_PAIRS_PER_MESSAGE, -(-len(pids) // threads)))
            for start in range(0, len(pids), size):
                try:
                    self.actor.send(shard, pids[start : start + size])
                except redis.RedisError as exc:
                    # The pairs stay reserved until the wake grace passes; then the sweep wakes them again.
                    log.warning("wake.send_failed", shard=shard, error=str(exc)[:200])
                    return
                if self.metrics is not None:
                    self.metrics.wakeups.labels(sender).inc()

    def close(self) -> None:
        self.loops.stop()
        self.runner.close()
        self.broker.close()
        self.client.close()


class ProcessorLoops(dramatiq.Middleware):
    """Starts the background loops with the Dramatiq worker; stops ingest and sweep before it shuts down and
    lease renewal only after its threads finished (a handler still running keeps its lease to the end)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._stops: dict[str, threading.Event] = {}  # loop name -> its stop signal
        self._threads: list[threading.Thread] = []
        self._worker_id = f"{socket.gethostname()}:{os.getpid()}"
        # A worker process is the stand-by ingester: the supervisor's dedicated ingester process normally holds
        # the lease, and a worker only competes for it after this delay (or once that lease lapses).
        self.ingest_delay_s = 0.0
        #: Called (once) when too many threads are stuck in abandoned calls: the worker should restart.
        self.on_exhausted: Callable[[], None] | None = None
        self._exhausted = False
        self._letters_trimmed_at = 0.0

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # Stop taking new work; keep renewing the leases of handlers still running (and enforcing their
        # timeouts) until they finish.
        self.engine.runner.stopping.set()
        self.stop(keep=("hookyard-leases", "hookyard-watchdog"))

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.stop()

    def start(self, *, ingest_only: bool = False) -> None:
        """Start the loops: all three in a worker; only ingestion in the dedicated ingester process."""
        if self._threads:
            return
        loops: list[tuple[str, Callable[[threading.Event], None]]] = [("hookyard-ingest", self._ingest_loop)]
        if not ingest_only:
            loops += [
                ("hookyard-sweep", self._sweep_loop),
                ("hookyard-leases", self._lease_loop),
                ("hookyard-watchdog", self._watchdog_loop),
            ]
        for name, target in loops:
            stop = self._stops[name] = threading.Event()
            thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, keep: tuple[str, ...] = ()) -> None:
        """Stop the loops, but those named in `keep` (they stop with a later call)."""
        stopping = [t for t in self._threads if t.name not in keep]
        for thread in stopping:
            self._stops[thread.name].set()
        for thread in stopping:
            thread.join(timeout=15)
        self._threads = [t for t in self._threads if t not in stopping]

    def _guarded(self, step: Callable[[], float], stop: threading.Event) -> None:
        """Run `step` until `stop` is set; it returns how long to wait before the next round."""
        backoff = 0.1
        while not stop.is_set():
            try:
                pause = step()
                backoff = 0.1
            except StoreUnavailable as exc:
                log.warning("loop.store_unavailable", loop=threading.current_thread().name, error=str(exc)[:200])
                pause, backoff = backoff, min(backoff * 2, 2.0)
            except Exception:
                log.exception("loop.failed", loop=threading.current_thread().name)
                pause, backoff = backoff, min(backoff * 2, 2.0)
            if pause > 0:
                stop.wait(pause)

    def _ingest_loop(self, stop: threading.Event) -> None:
        engine = self.engine
        # BLPOP blocks a pooled connection for up to `idle_wait`, well inside the client's socket timeout.
        blocking = redis.Redis(connection_pool=engine.client.connection_pool)
        idle_wait = min(1.0, engine.settings.sweep_interval_s)
        if stop.wait(self.ingest_delay_s):
            return

        def step() -> float:
            result = engine.ingester.ingest_once()
            if result is None:
                return idle_wait  # another worker is the ingester; take over if its lease lapses
            if result.wake:
                engine.send_wake(result.wake, "ingest")
            if result.read == 0:
                engine.store.inbox.wait(idle_wait, blocking)
            return 0.0

        self._guarded(step, stop)
        with contextlib.suppress(StoreUnavailable):  # if Redis is away, the lease lapses by itself
            engine.store.inbox.release_lease(engine.ingester.token)

    def sweep_once(self) -> int:
        """Heartbeat, then wake every pair that is due; returns how many pairs were woken."""
        engine = self.engine
        info = {"abandoned": engine.runner.inflight.abandoned, "threads": engine.settings.worker_threads}
        engine.store.upkeep.heartbeat(self._worker_id, engine.clock_ms(), info)
        if time.monotonic() - self._letters_trimmed_at >= _TRIM_LETTERS_EVERY_S:
            self._letters_trimmed_at = time.monotonic()
            dropped = engine.store.upkeep.trim_letters(engine.clock_ms())
            if dropped:
                log.warning("letters.expired", dropped=dropped)
        # Backpressure: while plenty of wake-ups wait in Dramatiq's queue (threads busy with slow handlers),
        # sending more would only pile up no-op messages; due pairs stay due and are found next round.
        enough_queued = 4 * engine.settings.worker_threads * engine.settings.workers
        if engine.store.upkeep.queued_wakeups() >= enough_queued:
            return 0
        wake = engine.store.upkeep.sweep(engine.clock_ms())
        if wake:
            engine.send_wake(wake, "sweep")
        return len(wake)

    def _sweep_loop(self, stop: threading.Event) -> None:
        interval = self.engine.settings.sweep_interval_s

        def step() -> float:
            self.sweep_once()
            return interval

        self._guarded(step, stop)

    def _watchdog_loop(self, stop: threading.Event) -> None:
        """Hand waiting pairs on, expire calls past their timeout, and restart a worker with too many stuck."""
        engine = self.engine
        interval = min(0.1, engine.settings.handoff_after_s / 2)

        def step() -> float:
            engine.runner.inflight.tick()
            abandoned = engine.runner.inflight.abandoned
            if abandoned >= engine.settings.max_abandoned_threads and not self._exhausted:
                self._exhausted = True
                log.error("worker.too_many_abandoned_calls", abandoned=abandoned,
                          limit=engine.settings.max_abandoned_threads, action="restarting")  # fmt: skip
                if self.on_exhausted is not None:
                    self.on_exhausted()
            return interval

        self._guarded(step, stop)

    def _lease_loop(self, stop: threading.Event) -> None:
        interval = self.engine.settings.lease_s / 3

        def step() -> float:
            self.engine.lease_keeper.renew_all()
            return interval

        self._guarded(step, stop)
