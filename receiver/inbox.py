"""Durable enqueue of accepted deliveries: many concurrent appends, one Redis round trip per batch.

Requests park a (message, future) pair in `pending`; a single flusher task writes everything pending with one
atomic script call (RPUSH of the batch + the workers' wake hint, receiver/inbox_connection.py) and resolves the
futures. While a write is in flight new appends accumulate for the next one, so the batch size follows the load
without a timer adding latency at low load.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import RedisError

from receiver.inbox_connection import InboxConnection, NotEnoughReplicas
from receiver.metrics import ReceiverMetrics
from shared.errors import StoreUnavailable
from shared.logging import get_logger
from shared.outage import OutageLog

__all__ = ["MAX_BATCH_BYTES", "MAX_BATCH_MESSAGES", "InboxWriter"]

#: Bounds on one write: a huge batch would hold Redis (single-threaded) busy and delay every other client.
MAX_BATCH_MESSAGES: Final = 512
MAX_BATCH_BYTES: Final = 4 << 20
#: WAIT is told to return this long before the first request of its batch gives up, so that request hears the
#: answer: Redis checks a blocked WAIT's timeout in its 100 ms cron (hz 10), so it may answer up to that late.
_WAIT_MARGIN_S: Final = 0.15

# A logger is fetched where it is used: one bound at import would keep the logging setup of import time.
_LOGGER = "hookyard.receiver.inbox"


class _Append:
    """One pending append: the message, the future its request awaits, and when that request gives up."""

    __slots__ = ("confirmed", "deadline", "message")

    def __init__(self, message: bytes, confirmed: asyncio.Future[None], deadline: float) -> None:
        self.message = message
        self.confirmed = confirmed
        self.deadline = deadline  # loop.time() based


class InboxWriter:
    """Appends queued messages to the inbox list; `append` returns only once Redis acknowledged the write."""

    def __init__(
        self,
        redis: Redis,
        *,
        timeout_s: float,
        shard: int = 0,
        min_replicas: int = 0,
        metrics: ReceiverMetrics | None = None,
        max_batch_messages: int = MAX_BATCH_MESSAGES,
        max_batch_bytes: int = MAX_BATCH_BYTES,
    ) -> None:
        self._connection = InboxConnection(redis, shard, min_replicas=min_replicas)
        self._timeout_s = timeout_s
        self._metrics = metrics
        self._max_batch_messages = max_batch_messages
        self._max_batch_bytes = max_batch_bytes
        self._pending: deque[_Append] = deque()
        self._in_flight: list[_Append] = []
        self._flusher: asyncio.Task[None] | None = None
        # One timer for the oldest outstanding append instead of one per append: under load a timer per
        # request was a measurable share of the receiver's CPU (uvloop timers are libuv handles).
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False
        self._outage = OutageLog(_LOGGER)  # logs an outage once when it starts and once when it ends

    async def append(self, message: bytes, source: str = "", event_id: str = "") -> None:
        """Store `message` at the tail of the inbox (`source` and `event_id` choose a shard of a sharded inbox).

        Raises `StoreUnavailable` when Redis fails or does not confirm within the timeout. A timed-out write
        may still land later: the sender retries the delivery and the processor drops the duplicate by id.
        """
        if self._closed:
            raise StoreUnavailable("the inbox writer is closed")
        loop = asyncio.get_running_loop()
        entry = _Append(message, loop.create_future(), loop.time() + self._timeout_s)
        self._pending.append(entry)
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush_pending())
            self._flusher.add_done_callback(_report_crash)
        if self._watchdog is None:
            self._watchdog = loop.call_at(entry.deadline, self._expire_overdue)
        await entry.confirmed

    async def close(self) -> None:
        """Stop accepting appends and settle every pending one: written, or failed with `StoreUnavailable`."""
        self._closed = True
        flusher = self._flusher
        if flusher is not None:
            # Every write is bounded by the deadlines of its appends and expired appends are skipped, so the
            # flusher ends within about one timeout; the bound only guards against a wedged connection.
            done, _ = await asyncio.wait({flusher}, timeout=2 * self._timeout_s + 1.0)
            if not done:
                flusher.cancel()
                await asyncio.wait({flusher})
        while self._pending:
            _fail(self._pending.popleft(), "the receiver shut down before the write")
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        await self._connection.close()

    @property
    def pending(self) -> int:
        """Appends waiting for a write (for tests and diagnostics)."""
        return len(self._pending)

    def _expire_overdue(self) -> None:
        self._watchdog = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        oldest: _Append | None = None
        for entry in self._in_flight:
            if entry.confirmed.done():
                continue
            if entry.deadline <= now:
                _fail(entry, f"redis did not confirm the write within {self._timeout_s} s")
            elif oldest is None:
                oldest = entry
        pending = self._pending
        while pending and (pending[0].deadline <= now or pending[0].confirmed.done()):
            _fail(pending.popleft(), f"redis did not confirm the write within {self._timeout_s} s")
        if oldest is None and pending:
            oldest = pending[0]
        if oldest is not None:
            self._watchdog = loop.call_at(oldest.deadline, self._expire_overdue)

    async def _flush_pending(self) -> None:
        try:
            while self._pending:
                batch = self._take_batch()
                if batch:
                    self._in_flight = batch
                    try:
                        await self._write(batch)
                    finally:
                        self._in_flight = []
        finally:
            self._flusher = None

    def _take_batch(self) -> list[_Append]:
        pending = self._pending
        batch: list[_Append] = []
        size = 0
        while pending and len(batch) < self._max_batch_messages:
            entry = pending[0]
            if entry.confirmed.done():
                # Expired or cancelled while waiting: its request has been answered 503, writing it is moot.
                pending.popleft()
                continue
            if batch and size + len(entry.message) > self._max_batch_bytes:
                break
            pending.popleft()
            batch.append(entry)
            size += len(entry.message)
        return batch

    async def _write(self, batch: list[_Append]) -> None:
        started = time.perf_counter()
        try:
            try:
                # Past the newest deadline in the batch nobody waits for this write any more.
                async with asyncio.timeout_at(batch[-1].deadline):
                    # WAIT (with min_replicas) answers by the first request's deadline, so it gets an answer too.
                    answer_by = batch[0].deadline - min(_WAIT_MARGIN_S, self._timeout_s / 4)
                    await self._connection.append([entry.message for entry in batch], answer_by)
            except NotEnoughReplicas as exc:
                # Stored on the primary but not yet safe from its loss: 503, and the sender's retry is a duplicate
                # the processor drops by event id. Said once per outage, like a Redis failure.
                self._outage.failed("inbox_replicas", exc)
                for entry in batch:
                    _fail(entry, str(exc))
                return
            except (RedisError, OSError, TimeoutError, StoreUnavailable) as exc:
                self._outage.failed("inbox", exc)  # one line per outage, not per batch
                for entry in batch:
                    _fail(entry, f"redis write failed: {type(exc).__name__}")
                return
            self._outage.recovered()
            if self._metrics is not None:
                self._metrics.observe_enqueue(len(batch), time.perf_counter() - started)
            for entry in batch:
                if not entry.confirmed.done():
                    entry.confirmed.set_result(None)
        finally:
            # Only reached with futures still open if something other than Redis failed (a bug): their
            # requests must still get an answer, and it must not be 200.
            for entry in batch:
                _fail(entry, "inbox write aborted")


def _fail(entry: _Append, why: str) -> None:
    if not entry.confirmed.done():
        entry.confirmed.set_exception(StoreUnavailable(why))


def _report_crash(flusher: asyncio.Task[None]) -> None:
    if not flusher.cancelled() and (exc := flusher.exception()) is not None:
        get_logger(_LOGGER).error("inbox.flusher_crashed", exc_info=exc)
