"""Wake-ups leave a worker through one thread of their own, so that no loop or runner thread ever waits for the
broker: a broker that refuses or hangs costs the wake-ups queued meanwhile, never an ingest or a sweep.

A wake-up that cannot be sent (the broker is down, or this process's short queue is full) is dropped: its pairs
stay reserved until the wake grace passes, and the sweep then sends them again.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import dramatiq

from processor.broker import BROKER_ERRORS, queued_wakeups
from processor.metrics import WorkerMetrics
from shared.outage import OutageLog

__all__ = ["WakeSender"]

#: Messages waiting for the sender thread at most; beyond, new wake-ups are dropped (the sweep re-sends them).
QUEUE_CAPACITY = 4096
#: After a failed send, the sender drops what waits and tries the broker again only after this pause.
RETRY_AFTER_S = 0.5
#: How often the sender thread reads the broker's queue depth (for the sweep's backpressure).
DEPTH_EVERY_S = 0.5

_Wake = tuple[int, list[str], str]


class WakeSender:
    """Sends `(shard, pair ids)` wake-up messages through `actor` from a daemon thread started on first use."""

    def __init__(
        self,
        actor: dramatiq.Actor[Any, Any],
        *,
        metrics: WorkerMetrics | None = None,
        capacity: int = QUEUE_CAPACITY,
        retry_after_s: float = RETRY_AFTER_S,
        outage: OutageLog | None = None,
    ) -> None:
        self.actor = actor
        self.metrics = metrics
        self.retry_after_s = retry_after_s
        #: Broker outages, said once each (`broker.unavailable`, then `broker.available_again`).
        self.outage = outage or OutageLog("hookyard.wakes", subject="broker")
        #: Wake-up messages dropped since start: the broker failed them, or the queue was full.
        self.dropped = 0
        self._queue: queue.Queue[_Wake] = queue.Queue(maxsize=capacity)
        self._depth = 0
        self._depth_read_at = -DEPTH_EVERY_S
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def submit(self, shard: int, pair_ids: list[str], sender: str) -> None:
        """Queue one message for the sender thread; never blocks."""
        self._ensure_started()
        try:
            self._queue.put_nowait((shard, pair_ids, sender))
        except queue.Full:
            self.dropped += 1

    def queued(self) -> int:
        """Wake-ups waiting in the broker's queue, as the sender thread last read them (at most `DEPTH_EVERY_S`
        ago): asking from the caller's thread could hold the sweep on a hung broker. 0 while the broker is down."""
        self._ensure_started()
        return 0 if self.outage.down else self._depth

    def flush(self, timeout_s: float) -> bool:
        """Wait until every wake-up submitted so far was sent or dropped; False if `timeout_s` passed first."""
        pending = self._queue
        with pending.all_tasks_done:
            return pending.all_tasks_done.wait_for(lambda: pending.unfinished_tasks == 0, timeout_s)

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=10)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="wake-sender", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if time.monotonic() - self._depth_read_at >= DEPTH_EVERY_S:
                self._read_depth()
            try:
                shard, pair_ids, sender = self._queue.get(timeout=DEPTH_EVERY_S)
            except queue.Empty:
                continue
            try:
                self.actor.send(shard, pair_ids)
            except BROKER_ERRORS as exc:
                self.dropped += 1
                self.outage.failed("wake", exc)
                self._drop_waiting()
                self._stop.wait(self.retry_after_s)
                continue
            finally:
                self._queue.task_done()
            self.outage.recovered()
            if self.metrics is not None:
                self.metrics.wakeups.labels(sender).inc()

    def _read_depth(self) -> None:
        self._depth_read_at = time.monotonic()
        try:
            self._depth = queued_wakeups(self.actor.broker)
        except BROKER_ERRORS as exc:
            self.outage.failed("queue_depth", exc)
            self._stop.wait(self.retry_after_s)
            return
        self.outage.recovered()

    def _drop_waiting(self) -> None:
        # Queued behind a failed send, they would most likely fail too, each after its own timeout.
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
            self.dropped += 1
            self._queue.task_done()
