"""Runs pairs: claim the head event of a (handler, ordering key), call the handler, record the outcome.

A pair is claimed only by the thread about to run it, right before the call, and the call starts only while
this process can still vouch for the lease (`processor.leases`); the `LeaseKeeper` renews it while the handler
works and the watchdog (`processor.inflight`) enforces timeouts and hands waiting pairs to other threads.
Outcomes are recorded by one script each (complete / fail), fenced by the lease token, so the only way a handler
sees an event it already finished is a call that outlived its lease or a crash after it returned and before
`complete` landed — then the next call has `event.attempt > 1`.
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

from processor.decode import event_from_message
from processor.event import Event
from processor.handlers import HandlerSpec, Registry, RetryLater, Unprocessable
from processor.inflight import Backlog, Call, ExclusiveTurn, InFlight
from processor.leases import LeaseKeeper
from processor.metrics import WorkerMetrics
from processor.outcomes import Outcomes
from processor.records import Claim, Settled
from processor.store import Store
from shared.errors import EnvelopeError, StoreUnavailable, WireFormatError
from shared.logging import get_logger

__all__ = ["Runner", "WakeSender"]

log = get_logger("hookyard.runner")

WakeSender = Callable[[list[tuple[int, str]], str], None]

#: How long an event whose stored bytes are missing waits before it is tried again.
_MISSING_BODY_RETRY_MS = 30_000
_UNKNOWN_HANDLER_RETRY_MS = 30_000
_GATE_CLOSED_RETRY_MS = 500


class Runner:
    """Executes wake-ups: each pair in turn, claimed only when its thread is about to run it."""

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
        handoff_after_s: float = 0.5,
        letter_retention_ms: int = 30 * 86_400_000,
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
        self.outcomes = Outcomes(store, clock_ms=clock_ms, metrics=metrics, rng=rng or random.Random(),
                                 letter_retention_ms=letter_retention_ms)  # fmt: skip
        # A suspect waits this long at most for the other calls of its process to finish (new ones wait too).
        self.isolation_wait_s = min(lease_keeper.lease_s, 2.0)
        self._local = threading.local()
        #: Set when the worker shuts down: no new pair is started, the waiting ones are handed on.
        self.stopping = threading.Event()
        self.inflight = InFlight(
            handoff_after_s=handoff_after_s,
            handoff=self._handoff,
            expire=self._expire,
            exclusive_hold_s=lease_keeper.lease_s,
        )
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._loops_lock = threading.Lock()

    def run_pairs(self, shard: int, pair_ids: list[str]) -> int:
        """Run the pairs of one wake-up on this thread, one after another; returns how many runs settled.

        Nothing is claimed ahead: a pair still waiting here is only a name, which the watchdog sends on to another
        thread once the current pair has kept this one busy for `handoff_after_s`.
        """
        backlog = Backlog(shard, pair_ids)
        self.inflight.add_backlog(backlog)
        settled = 0
        try:
            while not self.stopping.is_set():
                pair_id = backlog.next()
                if pair_id is None:
                    break
                backlog.busy_since = time.monotonic()
                settled += self.run_pair(shard, pair_id)
                backlog.busy_since = None
        finally:
            self.inflight.remove_backlog(backlog)
            rest = backlog.take_all()
            if rest:  # stopping: another worker takes them
                self._handoff(shard, rest)
        return settled

    def run_pair(self, shard: int, pair_id: str) -> int:
        """Run the pair's runnable events (up to the budget); returns how many were settled."""
        token = uuid.uuid4().hex
        deadline = time.monotonic() + self.budget_s
        settled_count = 0
        claim = self.store.pairs.claim(shard, pair_id, token, self.clock_ms())
        if isinstance(claim, Claim) and claim.suspect:
            return self._run_suspect(claim)
        while isinstance(claim, Claim):
            settled_count += 1
            more = settled_count < self.budget_events and time.monotonic() < deadline and not self.stopping.is_set()
            settled = self._run_claim(claim, wake=not more, claim_next=more)
            if settled.wake:
                self.send_wake([(shard, pair_id)], "runner")
            if not more or settled.outcome in ("fenced", "abandoned"):
                break
            if settled.next_claim is not None:
                claim = settled.next_claim  # `complete` already leased the next event: no extra round trip
            elif 0 <= settled.next_due_ms <= self.clock_ms():
                claim = self.store.pairs.claim(shard, pair_id, token, self.clock_ms())
            else:
                break
        return settled_count

    def _run_suspect(self, claim: Claim) -> int:
        """Run an event whose previous call never reported back alone in this process: if it is what kills the
        worker, no other event is in flight to be charged an attempt for it."""
        self.store.pairs.release(claim, self.clock_ms())  # uncounted: counted again when it really starts
        gate = self.inflight.gate
        if not gate.enter_exclusive(self.isolation_wait_s):
            # Other calls here did not finish in time. Back off, so that the gate opens for them meanwhile: a
            # process with a long call must not stall its other keys for as long as that call runs.
            self._defer_suspect(claim)
            return 0
        try:
            again = self.store.pairs.claim(claim.shard, claim.pair_id, uuid.uuid4().hex, self.clock_ms(), alone=True)
        except BaseException:
            gate.leave_exclusive()
            raise
        if not isinstance(again, Claim):
            gate.leave_exclusive()
            return 0
        log.warning("run.suspect_alone", handler=again.handler, event_id=again.event_id, attempt=again.attempt)
        turn = ExclusiveTurn(gate)
        try:
            settled = self._run_claim(again, wake=True, turn=turn)
        finally:
            turn.close()
        if settled.wake:
            self.send_wake([(again.shard, again.pair_id)], "runner")
        return 1

    def _defer_suspect(self, claim: Claim) -> None:
        log.info("run.suspect_deferred", handler=claim.handler, event_id=claim.event_id)
        again = self.store.pairs.claim(claim.shard, claim.pair_id, uuid.uuid4().hex, self.clock_ms())
        if isinstance(again, Claim):
            not_before = self.clock_ms() + int(self.lease_keeper.lease_s * 1000)
            self.store.pairs.release(again, self.clock_ms(), not_before_ms=not_before)

    def _run_claim(
        self, claim: Claim, *, wake: bool, claim_next: bool = False, turn: ExclusiveTurn | None = None
    ) -> Settled:
        """Run one claimed event; with `turn`, alone in this process (the call takes the turn over)."""
        spec = self.registry.get(claim.handler)
        if spec is None:
            # A pair admitted by a worker with a newer handler set (a rolling deploy): give it back uncounted, to
            # be picked up again in a while, by then perhaps by a worker that has the handler.
            log.warning("run.unknown_handler", handler=claim.handler, event_id=claim.event_id)
            self.store.pairs.release(claim, self.clock_ms(), not_before_ms=self.clock_ms() + _UNKNOWN_HANDLER_RETRY_MS)
            return Settled("released", -1, False)
        if claim.attempt - claim.prior_attempts > spec.max_attempts and (claim.convicted or not claim.suspect):
            # Attempts are counted when a call starts; more than allowed means earlier calls of this very event
            # never reported back, the last one while it ran alone in its worker (it kills its worker: out of
            # memory, a segfault): set it aside. A suspect not yet run alone gets that run first.
            return self.outcomes.fail(claim, spec, "WorkerLost", "the worker died during every allowed attempt", "",
                              retry_in_s=0.0, wake=wake, final=True)  # fmt: skip
        if not claim.message:
            # The pair knows the event but its bytes are gone: the store lost part of a slot (a primary killed in
            # the middle of a slot migration leaves keys on both nodes). That is the store's to repair, not the
            # event's fault: give it back uncounted and try again later, loudly, instead of dead-lettering it.
            log.error("run.body_missing", handler=claim.handler, event_id=claim.event_id, shard=claim.shard,
                      hint="a half-moved slot? `redis-cli --cluster check`; `hookyard doctor`")  # fmt: skip
            self.store.pairs.release(claim, self.clock_ms(), not_before_ms=self.clock_ms() + _MISSING_BODY_RETRY_MS)
            return Settled("released", -1, False)
        lease = self.lease_keeper.lease(claim)
        try:
            event = event_from_message(
                claim.message,
                late=claim.late,
                attempt=claim.attempt,
                issued_at_ms=claim.issued_at_ms,
                lease_check=lease.alive,
            )
        except (WireFormatError, EnvelopeError) as exc:
            # Admission stored these bytes after parsing them, so this is corruption: set the event aside.
            return self.outcomes.fail(claim, spec, type(exc).__name__, str(exc), "", retry_in_s=0.0, wake=wake,
                              final=True)  # fmt: skip
        if claim.late and spec.late == "skip" and not claim.replay:
            letter = self.outcomes.letter(
                claim, spec, event.type, "LateEvent", "skipped: issued before a delivered event", ""
            )
            self.outcomes.keep_archive_for_letter(claim)
            settled = self.store.pairs.complete(
                claim, self.clock_ms(), wake=wake, skipped=letter, claim_next=claim_next
            )
            self.outcomes.count(spec.name, "skipped")
            if self.metrics is not None:
                self.metrics.late.labels(spec.name, "skipped").inc()
            log.info("event.late_skipped", handler=spec.name, event_id=claim.event_id, key=claim.ordering_key)
            return settled
        if not lease.alive():
            # This process was paused (or Redis slow) between the claim and now: the pair may be another runner's
            # already. Starting the call could run an event twice, or out of order: don't.
            log.warning("run.lease_expired_before_call", handler=spec.name, event_id=claim.event_id)
            self.outcomes.count(spec.name, "fenced")
            self.store.pairs.release(claim, self.clock_ms())
            return Settled("fenced", -1, False)
        if turn is not None:
            slot = turn.hand_over()
        elif claim.suspect or not self.inflight.gate.try_enter_shared():
            # A suspect runs alone here just now (or this is one, met mid-budget): don't wait holding a claim.
            self.store.pairs.release(claim, self.clock_ms(), not_before_ms=self.clock_ms() + _GATE_CLOSED_RETRY_MS)
            return Settled("released", -1, False)
        else:
            slot = "shared"
        if claim.late and self.metrics is not None:
            self.metrics.late.labels(spec.name, "delivered").inc()
        call = Call(spec, lease, time.monotonic(), self.inflight.gate, slot)
        self.lease_keeper.hold(lease)
        self.inflight.start(call)
        error: tuple[str, str, str, float | None] | None = None
        final = False
        try:
            self._call(spec, event, call)
        except Unprocessable as exc:
            error, final = (type(exc).__qualname__, str(exc), traceback.format_exc(), 0.0), True
        except RetryLater as exc:
            error = ("RetryLater", str(exc), "", exc.seconds)
        except asyncio.CancelledError:
            error = ("HandlerCancelled", "cancelled: its lease was lost", "", None)
        except Exception as exc:  # noqa: BLE001 - a handler's failure is data: retried, then dead-lettered
            error = (type(exc).__qualname__, str(exc), traceback.format_exc(), None)
        finally:
            self.lease_keeper.release(lease)
            ours = self.inflight.end(call)
            if self.metrics is not None:
                self.metrics.observe_duration(spec.name, time.monotonic() - call.started)
        if not ours:
            # The watchdog recorded this call's timeout and the pair went on without it.
            log.warning("run.abandoned_call_returned", handler=spec.name, event_id=claim.event_id,
                        ran_s=round(time.monotonic() - call.started, 3))  # fmt: skip
            return Settled("abandoned", -1, False)
        if error is not None:
            error_type, message, trace, retry_in_s = error
            return self.outcomes.fail(claim, spec, error_type, message, trace, retry_in_s=retry_in_s, wake=wake,
                              final=final, event_type=event.type)  # fmt: skip
        now = self.clock_ms()
        settled = self.store.pairs.complete(claim, now, wake=wake, claim_next=claim_next)
        if settled.outcome == "fenced":
            self.outcomes.count(spec.name, "fenced")
            log.warning("run.fenced", handler=spec.name, event_id=claim.event_id, key=claim.ordering_key)
            return settled
        self.outcomes.count(spec.name, "ok")
        if self.metrics is not None:
            self.metrics.observe_lag(spec.name, max(0.0, (now - claim.issued_at_ms) / 1000))
        log.debug("run.ok", handler=spec.name, event_id=claim.event_id, attempt=claim.attempt)
        return settled

    # -- watchdog actions (called from the engine's watchdog thread) -------------------------------------------

    def _handoff(self, shard: int, pair_ids: list[str]) -> None:
        """Send waiting pairs on as a wake-up of their own, for any free thread."""
        log.debug("wake.handoff", shard=shard, pairs=len(pair_ids))
        self.send_wake([(shard, pair_id) for pair_id in pair_ids], "handoff")

    def _expire(self, call: Call) -> None:
        """Record a call's timeout as a failed attempt; the pair goes on without waiting for the call."""
        claim, spec = call.lease.claim, call.spec
        self.lease_keeper.release(call.lease)
        if self.metrics is not None:
            self.metrics.timeouts.labels(spec.name).inc()
        log.error("run.timeout", handler=spec.name, event_id=claim.event_id, attempt=claim.attempt,
                  timeout_s=spec.timeout_s)  # fmt: skip
        message = f"the call ran past its timeout of {spec.timeout_s:g} s and was abandoned"
        try:
            settled = self.outcomes.fail(claim, spec, "HandlerTimeout", message, "", retry_in_s=None, wake=True)
        except StoreUnavailable as exc:
            # Not recorded: the lease is no longer renewed, so it lapses and the sweep hands the pair on.
            log.warning("run.timeout_not_recorded", handler=spec.name, event_id=claim.event_id, error=str(exc)[:200])
            return
        if settled.wake:
            self.send_wake([(claim.shard, claim.pair_id)], "runner")

    def _call(self, spec: HandlerSpec, event: Event, call: Call) -> None:
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
        task = loop.create_task(coro)
        call.loop, call.task = loop, task
        if not call.lease.alive():  # the watchdog may have looked before the task existed
            task.cancel()
        loop.run_until_complete(task)

    def close(self) -> None:
        with self._loops_lock:
            loops, self._loops = self._loops, []
        for loop in loops:
            # A loop still running belongs to an abandoned async call (a blocking call inside a coroutine): the
            # thread may come back to it; it dies with the process.
            if not loop.is_running():
                loop.close()

    def drain(self, timeout_s: float) -> int:
        """Stop starting pairs and wait (at most `timeout_s`) for the calls still running, except abandoned ones;
        returns how many are still running then."""
        self.stopping.set()
        return self.inflight.wait_for_live_calls(timeout_s)
