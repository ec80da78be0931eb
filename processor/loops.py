"""The background loops of a worker process, started and stopped with its Dramatiq worker: ingest (the standby
ingester's, or the dedicated ingester process's only loop), the sweep (heartbeat, due pairs, letter retention),
lease renewal, the watchdog over in-flight calls (`processor.inflight`), and, when HOOKYARD_RECONCILE_INTERVAL
is set, reconciliation from the Events API (`processor.reconcile.loop`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dramatiq

from processor.ingest_share import DEDICATED, STANDBY, IngestShare
from processor.stats import describe_handler, worker_info
from shared.errors import ConfigError, StoreUnavailable
from shared.logging import get_logger

if TYPE_CHECKING:
    from processor.engine import Engine

__all__ = ["ProcessorLoops"]

log = get_logger("hookyard.loops")

_TRIM_LETTERS_EVERY_S = 30.0


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
        self._handler_set: list[dict[str, Any]] | None = None
        #: The inbox shards this process ingests (set when the loops start).
        self.ingest_share: IngestShare | None = None

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
        engine = self.engine
        role = DEDICATED if ingest_only else STANDBY
        self.ingest_share = IngestShare(
            engine.store.inbox, role, engine.settings.inbox_shards, engine.clock_ms, engine.ingester.lease_ms
        )
        loops: list[tuple[str, Callable[[threading.Event], None]]] = [("hookyard-ingest", self._ingest_loop)]
        if not ingest_only:
            loops += [
                ("hookyard-sweep", self._sweep_loop),
                ("hookyard-leases", self._lease_loop),
                ("hookyard-watchdog", self._watchdog_loop),
            ]
            if self.engine.settings.reconcile.interval_s:
                loops.append(("hookyard-reconcile", self._reconcile_loop))
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
                self.engine.outage.recovered()
            except StoreUnavailable as exc:
                self.engine.outage.failed(threading.current_thread().name, exc)
                pause, backoff = backoff, min(backoff * 2, 2.0)
            except Exception:
                log.exception("loop.failed", loop=threading.current_thread().name)
                pause, backoff = backoff, min(backoff * 2, 2.0)
            if pause > 0:
                stop.wait(pause)

    def _ingest_loop(self, stop: threading.Event) -> None:
        """Start one ingest thread per inbox shard (more as receivers widen the inbox) and keep the roll fresh."""
        share = self.ingest_share
        if share is None or stop.wait(self.ingest_delay_s):
            return
        shard_threads: dict[int, threading.Thread] = {}

        def step() -> float:
            share.refresh()
            for shard in range(share.width):
                if shard not in shard_threads:
                    thread = threading.Thread(
                        target=self._ingest_shard, args=(shard, stop), name=f"hookyard-ingest-{shard}", daemon=True
                    )
                    thread.start()
                    shard_threads[shard] = thread
            return 1.0

        self._guarded(step, stop)
        for thread in shard_threads.values():
            thread.join(timeout=15)

    def _ingest_shard(self, shard: int, stop: threading.Event) -> None:
        engine = self.engine
        share = self.ingest_share
        assert share is not None
        inbox, token = engine.store.inbox, engine.ingester.token
        idle_wait = min(1.0, engine.settings.sweep_interval_s)

        def step() -> float:
            share.refresh()
            if not share.may_try(shard):
                return idle_wait  # at our share: other ingesters hold the rest (we take over if one lapses)
            result = engine.ingester.ingest_once(shard)
            share.held(shard, result is not None)
            if result is None:
                return idle_wait  # another ingester holds this shard; take over if its lease lapses
            if result.wake:
                engine.send_wake(result.wake, "ingest")
            if share.over_share(shard):
                inbox.release_lease(token, shard)  # another ingester arrived: hand this shard over
                share.held(shard, False)
                return idle_wait
            if result.read == 0:
                inbox.wait(idle_wait, engine.blocking_client, shard)
            return 0.0

        self._guarded(step, stop)
        if shard in share.holding:
            with contextlib.suppress(StoreUnavailable):  # if Redis is away, the lease lapses by itself
                inbox.release_lease(token, shard)

    def _reconcile_loop(self, stop: threading.Event) -> None:
        """Continuous reconciliation from the Events API (processor.reconcile.loop): one worker leads at a time."""
        # Imported here: the workos SDK takes half a second to import, and only a reconciling worker needs it.
        from processor.reconcile.loop import ReconcileLoop

        engine = self.engine
        try:
            reconcile = ReconcileLoop(
                engine.settings.reconcile, engine.registry, engine.client, clock_ms=engine.clock_ms,
                metrics=engine.metrics,
            )  # fmt: skip
        except ConfigError as exc:
            log.error("reconcile.disabled", setting=exc.setting, problem=exc.problem)
            return
        self._guarded(reconcile.step, stop)
        with contextlib.suppress(StoreUnavailable):  # if Redis is away, the lease lapses by itself
            reconcile.close()

    def sweep_once(self) -> int:
        """Heartbeat, then wake every pair that is due; returns how many pairs were woken."""
        engine = self.engine
        info = worker_info(
            abandoned=engine.runner.inflight.abandoned,
            threads=engine.settings.worker_threads,
            handlers=self._loaded_handlers(),
        )
        engine.store.upkeep.heartbeat(self._worker_id, engine.clock_ms(), info)
        if time.monotonic() - self._letters_trimmed_at >= _TRIM_LETTERS_EVERY_S:
            self._letters_trimmed_at = time.monotonic()
            dropped = engine.store.upkeep.trim_letters(engine.clock_ms())
            if dropped:
                log.warning("letters.expired", dropped=dropped)
        # Backpressure: while plenty of wake-ups wait in Dramatiq's queue (threads busy with slow handlers),
        # sending more would only pile up no-op messages; due pairs stay due and are found next round.
        enough_queued = 4 * engine.settings.worker_threads * engine.settings.workers
        if engine.wakes.queued() >= enough_queued:
            return 0
        wake = engine.store.upkeep.sweep(engine.clock_ms())
        if wake:
            engine.send_wake(wake, "sweep")
        return len(wake)

    def _loaded_handlers(self) -> list[dict[str, Any]]:
        # Published with every heartbeat (`hookyard handlers` shows what the live workers run); the registry does
        # not change once the worker runs, so it is described (its sources digested) once.
        if self._handler_set is None:
            specs = sorted(self.engine.registry, key=lambda spec: spec.name)
            self._handler_set = [describe_handler(spec) for spec in specs]
        return self._handler_set

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
