"""Runs pairs: claim the head event of a (handler, ordering key), call the handler, record the outcome.

A run holds a fenced lease on its pair; the `LeaseKeeper` renews it while a slow handler works. Outcomes are
recorded by one script each (complete / fail), so the only way a handler sees an event it already finished is a
crash after it returned and before `complete` landed — then `event.attempt > 1` says so.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import orjson

from processor.decode import event_from_message
from processor.event import Event
from processor.handlers import HandlerSpec, Registry, RetryLater
from processor.metrics import WorkerMetrics
from processor.store import Claim, Settled, Store
from shared.errors import EnvelopeError, StoreUnavailable, WireFormatError
from shared.logging import get_logger

__all__ = ["LeaseKeeper", "Runner", "WakeSender", "backoff_s"]

log = get_logger("hookyard.runner")

WakeSender = Callable[[list[tuple[int, str]], str], None]

_MAX_TRACEBACK = 8192
_UNKNOWN_HANDLER_RETRY_MS = 30_000
_MAX_MESSAGE = 1024


def backoff_s(attempt: int, min_s: float, max_s: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: about min * 2^(attempt-1), jittered down by up to half, within [min, max]."""
    ceiling = min(max_s, min_s * (2 ** max(0, attempt - 1)))
    return float(max(min_s, ceiling * rng.uniform(0.5, 1.0)))


class LeaseKeeper:
    """Renews the leases of the pairs this process is running, so a long handler keeps its pair."""

    def __init__(self, store: Store, clock_ms: Callable[[], int]) -> None:
        self.store = store
        self.clock_ms = clock_ms
        self._held: dict[tuple[int, str], str] = {}
        self._lock = threading.Lock()

    def hold(self, claim: Claim) -> None:
        with self._lock:
            self._held[(claim.shard, claim.pid)] = claim.token

    def release(self, claim: Claim) -> None:
        with self._lock:
            # Only our own hold: another thread may hold the same pair under a newer claim by now.
            if self._held.get((claim.shard, claim.pid)) == claim.token:
                del self._held[(claim.shard, claim.pid)]

    def renew_all(self) -> int:
        """Renew every held lease once; returns how many are still ours."""
        with self._lock:
            held = list(self._held.items())
        kept = 0
        for (shard, pid), token in held:
            try:
                if self.store.renew(shard, pid, token, self.clock_ms()):
                    kept += 1
                else:
                    with self._lock:
                        still_held = self._held.get((shard, pid)) == token
                    # A run that completed between the snapshot and the renewal freed its lease itself.
                    if still_held:
                        log.warning("lease.lost", shard=shard, pair=pid)
            except StoreUnavailable as exc:
                log.warning("lease.renew_failed", shard=shard, pair=pid, error=str(exc)[:200])
        return kept


class Runner:
    """Executes wake-ups: for each pair, runs its runnable head events one at a time."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        *,
        clock_ms: Callable[[], int],
        send_wake: WakeSender,
        lease_keeper: LeaseKeeper,
        metrics: WorkerMetrics | None = None,
        budget_events: int = 100,
        budget_s: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock_ms = clock_ms
        self.send_wake = send_wake
        self.lease_keeper = lease_keeper
        self.metrics = metrics
        self.budget_events = budget_events
        self.budget_s = budget_s
        self.rng = rng or random.Random()
        self._local = threading.local()
        #: Set when the worker shuts down: no new pair is started, claims not yet run are given back.
        self.stopping = threading.Event()
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._loops_lock = threading.Lock()

    def run_pairs(self, shard: int, pids: list[str]) -> int:
        """Run the pairs of one wake-up: their first claims go in one round trip, then each pair in turn.

        Returns how many runs settled.
        """
        token = uuid.uuid4().hex
        if len(pids) == 1:
            return self.run_pair(shard, pids[0], token=token)
        claims = [c for c in self.store.claim_many(shard, pids, token, self.clock_ms()) if isinstance(c, Claim)]
        # Leases taken up front must be renewed while they wait their turn, or a slow first handler could let a
        # later one lapse and another runner would run that event at the same time as we do.
        for claim in claims:
            self.lease_keeper.hold(claim)
        settled = 0
        try:
            for n, claim in enumerate(claims):
                if self.stopping.is_set():
                    for unstarted in claims[n:]:
                        self.store.release(unstarted, self.clock_ms())
                    break
                settled += self.run_pair(shard, claim.pid, token=token, first=claim)
        finally:
            for claim in claims:
                self.lease_keeper.release(claim)
        return settled

    def run_pair(self, shard: int, pid: str, *, token: str | None = None, first: Claim | None = None) -> int:
        """Run the pair's runnable events (up to the budget); returns how many were settled."""
        token = token or uuid.uuid4().hex
        deadline = time.monotonic() + self.budget_s
        settled_count = 0
        claim = first if first is not None else self.store.claim(shard, pid, token, self.clock_ms())
        while isinstance(claim, Claim):
            settled_count += 1
            more = settled_count < self.budget_events and time.monotonic() < deadline and not self.stopping.is_set()
            settled = self._run_claim(claim, wake=not more, claim_next=more)
            if settled.wake:
                self.send_wake([(shard, pid)], "runner")
            if not more or settled.outcome == "fenced":
                break
            if settled.next_claim is not None:
                claim = settled.next_claim  # `complete` already leased the next event: no extra round trip
            elif 0 <= settled.next_due_ms <= self.clock_ms():
                claim = self.store.claim(shard, pid, token, self.clock_ms())
            else:
                break
        return settled_count

    def _run_claim(self, claim: Claim, *, wake: bool, claim_next: bool = False) -> Settled:
        spec = self.registry.get(claim.handler)
        if spec is None:
            # A pair admitted by a worker with a newer handler set (a rolling deploy): give it back uncounted, to
            # be picked up again in a while, by then perhaps by a worker that has the handler.
            log.warning("run.unknown_handler", handler=claim.handler, event_id=claim.event_id)
            self.store.release(claim, self.clock_ms(), not_before_ms=self.clock_ms() + _UNKNOWN_HANDLER_RETRY_MS)
            return Settled("released", -1, False)
        if claim.attempt > spec.max_attempts:
            # Attempts are counted when a run starts; more than allowed means earlier runs never reported back
            # (the worker died each time, e.g. killed by this very event): stop the loop, set the event aside.
            return self._fail(claim, spec, "WorkerLost", "the worker died during every allowed attempt", "",
                              retry_in_s=0.0, wake=wake, final=True)  # fmt: skip
        try:
            event = event_from_message(claim.message, late=claim.late, attempt=claim.attempt)
        except (WireFormatError, EnvelopeError) as exc:
            # Admission stored these bytes after parsing them, so this is corruption: set the event aside.
            return self._fail(claim, spec, type(exc).__name__, str(exc), "", retry_in_s=0.0, wake=wake,
                              final=True)  # fmt: skip
        if claim.late and spec.late == "skip" and not claim.replay:
            record = self._record(claim, spec, event.type, "LateEvent", "skipped: issued before a delivered event", "")
            settled = self.store.complete(
                claim, self.clock_ms(), wake=wake, skipped_record=record, claim_next=claim_next
            )
            self._count(spec.name, "skipped")
            if self.metrics is not None:
                self.metrics.late.labels(spec.name, "skipped").inc()
            log.info("event.late_skipped", handler=spec.name, event_id=claim.event_id, key=claim.ordering_key)
            return settled
        if claim.late and self.metrics is not None:
            self.metrics.late.labels(spec.name, "delivered").inc()
        self.lease_keeper.hold(claim)
        started = time.perf_counter()
        try:
            self._call(spec, event)
        except RetryLater as exc:
            return self._fail(claim, spec, "RetryLater", str(exc), "", retry_in_s=exc.seconds, wake=wake,
                              event_type=event.type)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - a handler's failure is data: retried, then dead-lettered
            return self._fail(claim, spec, type(exc).__qualname__, str(exc), traceback.format_exc(),
                              retry_in_s=None, wake=wake, event_type=event.type)  # fmt: skip
        finally:
            self.lease_keeper.release(claim)
            if self.metrics is not None:
                self.metrics.duration.labels(spec.name).observe(time.perf_counter() - started)
        now = self.clock_ms()
        settled = self.store.complete(claim, now, wake=wake, claim_next=claim_next)
        if settled.outcome == "fenced":
            self._count(spec.name, "fenced")
            log.warning("run.fenced", handler=spec.name, event_id=claim.event_id, key=claim.ordering_key)
            return settled
        self._count(spec.name, "ok")
        if self.metrics is not None:
            self.metrics.lag.labels(spec.name).observe(max(0.0, (now - claim.issued_at_ms) / 1000))
        log.debug("run.ok", handler=spec.name, event_id=claim.event_id, attempt=claim.attempt)
        return settled

    def _fail(
        self,
        claim: Claim,
        spec: HandlerSpec | None,
        error_type: str,
        message: str,
        trace: str,
        *,
        retry_in_s: float | None,
        wake: bool,
        final: bool = False,
        event_type: str = "",
    ) -> Settled:
        now = self.clock_ms()
        name = spec.name if spec is not None else claim.handler
        max_attempts = 0 if final else (spec.max_attempts if spec is not None else 8)
        if retry_in_s is None:
            assert spec is not None
            retry_in_s = backoff_s(claim.attempt, spec.min_backoff_s, spec.max_backoff_s, self.rng)
        record = self._record(claim, spec, event_type, error_type, message, trace, now=now)
        settled = self.store.fail(
            claim,
            now,
            retry_at_ms=now + int(retry_in_s * 1000),
            max_attempts=max_attempts,
            record=record,
            wake=wake,
        )
        self._count(name, settled.outcome)
        fields = {
            "handler": name,
            "event_id": claim.event_id,
            "attempt": claim.attempt,
            "error": error_type,
            "outcome": settled.outcome,
        }
        if settled.outcome == "dead":
            log.error("run.dead_letter", **fields, message=message[:200])
        elif settled.outcome == "retry":
            log.info("run.retry", **fields, retry_in_s=round(retry_in_s, 3))
        else:
            log.warning("run.fenced", **fields)
        return settled

    def _record(
        self,
        claim: Claim,
        spec: HandlerSpec | None,
        event_type: str,
        error_type: str,
        message: str,
        trace: str,
        *,
        now: int | None = None,
    ) -> bytes:
        now = now if now is not None else self.clock_ms()
        return orjson.dumps(
            {
                "event_id": claim.event_id,
                "event_type": event_type,
                "handler": claim.handler,
                "source": claim.source,
                "ordering_key": claim.ordering_key,
                "ordered": spec.ordered if spec is not None else True,
                "shard": claim.shard,
                "pair": claim.pid,
                "issued_at_ms": claim.issued_at_ms,
                "error_type": error_type,
                "error_message": message[:_MAX_MESSAGE],
                "traceback": trace[-_MAX_TRACEBACK:],
                "attempts": claim.attempt,
                "first_failure_ms": claim.first_failure_ms or now,
                "last_failure_ms": now,
            }
        )

    def _count(self, handler: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.runs.labels(handler, outcome).inc()

    def _call(self, spec: HandlerSpec, event: Event) -> None:
        if not spec.is_async:
            spec.func(event)
            return
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is None:
            # One loop per worker thread, reused: creating a loop per call would cost more than most handlers.
            loop = asyncio.new_event_loop()
            self._local.loop = loop
            with self._loops_lock:
                self._loops.append(loop)
        coro: Coroutine[Any, Any, None] = spec.func(event)  # type: ignore[assignment]
        loop.run_until_complete(coro)

    def close(self) -> None:
        with self._loops_lock:
            loops, self._loops = self._loops, []
        for loop in loops:
            loop.close()
