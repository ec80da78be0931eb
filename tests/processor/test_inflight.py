"""The watchdog's rules (handoff, timeout, lease loss), the gate that runs suspects alone, and the check that no
call starts without a live lease (processor/inflight.py, processor/leases.py, the runner)."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any

import pytest

from processor import Event, Registry, RetryLater
from processor.handlers import HandlerSpec
from processor.inflight import Backlog, Call, Gate, InFlight
from processor.leases import Lease
from processor.records import Claim
from processor.testing import Harness

T0 = "2026-01-01T00:00:"


def claim(pid: str = "p") -> Claim:
    return Claim(0, pid, "token", "event_1", 0, 1, False, False, 0, 0, "h", "workos", "k", b"")


def spec(timeout_s: float = 5.0) -> HandlerSpec:
    registry = Registry()
    return registry.register(lambda e: None, ["*"], name="h", timeout=timeout_s)


class Recorder:
    def __init__(self) -> None:
        self.handoffs: list[tuple[int, list[str]]] = []
        self.expired: list[Call] = []

    def inflight(self, handoff_after_s: float = 0.5) -> InFlight:
        return InFlight(
            handoff_after_s=handoff_after_s,
            handoff=lambda shard, pids: self.handoffs.append((shard, pids)),
            expire=self.expired.append,
            exclusive_hold_s=10.0,
        )


def test_waiting_pairs_are_handed_on_once_their_thread_is_busy_too_long() -> None:
    rec = Recorder()
    inflight = rec.inflight(handoff_after_s=0.5)
    backlog = Backlog(3, ["a", "b", "c", "b"])
    inflight.add_backlog(backlog)
    assert backlog.next() == "a"
    backlog.busy_since = 100.0
    # Not yet: the current pair has kept the thread busy for less than the handoff delay
    inflight.tick(now=100.4)
    assert rec.handoffs == []
    # Then the waiting pairs (each once) go on as a wake-up of their own, and the thread finds none left
    inflight.tick(now=100.6)
    assert rec.handoffs == [(3, ["b", "c"])]
    assert backlog.next() is None
    inflight.tick(now=200.0)
    assert len(rec.handoffs) == 1


def test_a_call_past_its_timeout_is_expired_once_and_counted_until_it_returns() -> None:
    rec = Recorder()
    inflight = rec.inflight()
    lease = Lease(claim(), valid_until=1e12)
    call = Call(spec(timeout_s=2.0), lease, started=100.0, gate=inflight.gate, slot="shared")
    assert inflight.gate.try_enter_shared()
    inflight.start(call)
    inflight.tick(now=101.9)
    assert rec.expired == [] and inflight.abandoned == 0
    inflight.tick(now=102.0)
    inflight.tick(now=103.0)
    # The timeout is recorded once, the lease is given up, the gate slot is free again, the thread is counted
    assert rec.expired == [call]
    assert lease.lost and not lease.alive()
    assert inflight.abandoned == 1
    assert inflight.gate.enter_exclusive(0.01)
    inflight.gate.leave_exclusive()
    # When the abandoned call finally returns, its outcome is not recorded again and it is no longer counted
    assert inflight.end(call) is False
    assert inflight.abandoned == 0


def test_a_call_that_returns_first_wins_over_its_timeout() -> None:
    rec = Recorder()
    inflight = rec.inflight()
    call = Call(spec(timeout_s=2.0), Lease(claim(), 1e12), started=100.0, gate=inflight.gate, slot="shared")
    assert inflight.gate.try_enter_shared()
    inflight.start(call)
    assert inflight.end(call) is True
    inflight.tick(now=500.0)
    assert rec.expired == [] and inflight.abandoned == 0


def test_an_async_call_is_cancelled_when_its_lease_is_lost() -> None:
    rec = Recorder()
    inflight = rec.inflight()
    lease = Lease(claim(), 1e12)
    call = Call(spec(timeout_s=60), lease, started=0.0, gate=inflight.gate, slot="shared")
    inflight.start(call)
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def handler() -> None:
        started.set()
        await asyncio.sleep(60)

    task = loop.create_task(handler())
    call.loop, call.task = loop, task
    thread = threading.Thread(target=lambda: loop.run_until_complete(asyncio.wait([task])))
    thread.start()
    assert started.wait(5)
    lease.lost = True
    inflight.tick(now=1.0)
    thread.join(5)
    assert task.cancelled()
    loop.close()


def test_the_gate_runs_a_suspect_alone() -> None:
    gate = Gate(hold_s=10.0)
    assert gate.try_enter_shared()
    # A suspect cannot start while another call runs, and ordinary calls cannot start while it waits
    assert gate.enter_exclusive(0.05) is False
    gate.leave_shared()
    assert gate.enter_exclusive(0.05) is True
    assert gate.try_enter_shared() is False
    gate.leave_exclusive()
    assert gate.try_enter_shared() is True
    gate.leave_shared()


def test_the_gate_opens_for_others_after_the_hold() -> None:
    gate = Gate(hold_s=0.0)
    assert gate.enter_exclusive(0.05)
    assert gate.try_enter_shared() is True  # a merely slow suspect does not stall its process past its hold


@pytest.fixture
def harness_options() -> dict[str, Any]:
    return {"reorder_window_s": 0}


def envelope(eid: str, second: int) -> dict[str, Any]:
    return {"id": eid, "event": "dsync.user.updated", "data": {"id": "user_1"}, "created_at": f"{T0}{second:02d}Z"}


def test_no_call_starts_once_the_lease_may_have_passed(registry: Registry, yard: Harness) -> None:
    seen: list[tuple[str, int]] = []
    registry.handler("dsync.*", name="h")(lambda e: seen.append((e.id, e.attempt)))
    yard.deliver(envelope("event_1", 1))
    admitted = yard.ingester.ingest_once()
    assert admitted is not None
    [(shard, pid)] = admitted.wake
    claimed = yard.store.pairs.claim(shard, pid, "token-1", yard.clock())
    assert isinstance(claimed, Claim) and claimed.attempt == 1
    # Given a thread that claimed, then was frozen for longer than the lease before calling the handler
    frozen = dataclasses.replace(claimed, sent_at=claimed.sent_at - 60)
    settled = yard.runner._run_claim(frozen, wake=True)
    # Then the handler was not called, and the attempt was given back (the next call is attempt 1)
    assert settled.outcome == "fenced" and seen == []
    yard.run()
    assert seen == [("event_1", 1)]


def test_a_handler_can_ask_whether_it_still_holds_its_lease(registry: Registry, yard: Harness) -> None:
    answers: list[bool] = []

    def check(event: Event) -> None:
        answers.append(event.lease_held())

    registry.handler("dsync.*", name="h")(check)
    yard.deliver(envelope("event_1", 1))
    yard.run()
    assert answers == [True]


def test_a_worker_killed_by_one_pair_charges_no_attempt_to_the_pairs_waiting_behind_it(
    registry: Registry, yard: Harness
) -> None:
    from processor.routing import Target
    from shared import keys

    calls: list[tuple[str, int]] = []

    def handler(event: Event) -> None:
        calls.append((event.data["id"], event.attempt))
        if event.data["id"] == "killer" and event.attempt == 1:
            raise SystemExit("the worker dies during this call")

    registry.handler("dsync.*", name="h")(handler)
    # Given a wake-up naming two pairs of one shard: the killer's first, an innocent one behind it
    shard = keys.pair_shard("workos", "killer")
    innocent = next(f"user_{i}" for i in range(1000) if keys.pair_shard("workos", f"user_{i}") == shard)
    for eid, rid in (("event_k", "killer"), ("event_i", innocent)):
        yard.deliver({"id": eid, "event": "dsync.user.updated", "data": {"id": rid}, "created_at": f"{T0}01Z"})
    yard.ingester.ingest_once()
    pids = [Target.of("h", "workos", rid, True).pair_id for rid in ("killer", innocent)]
    with pytest.raises(SystemExit):
        yard.runner.run_pairs(shard, pids)
    # When the leases lapse and the pairs run again
    yard.clock.advance(60)
    yard.run()
    # Then the innocent event's first call is its attempt 1: it was never claimed while it waited
    assert (innocent, 1) in calls and ("killer", 2) in calls


def _run_through_deaths(yard: Harness, rounds: int = 20) -> None:
    for _ in range(rounds):
        try:
            yard.run()
            return
        except SystemExit:
            yard.clock.advance(60)  # the dead worker's lease lapses


def test_a_neighbour_lost_on_its_last_attempt_is_run_alone_not_dead_lettered(registry: Registry, yard: Harness) -> None:
    calls: list[tuple[str, int]] = []
    tries: dict[str, int] = {}

    def handler(event: Event) -> None:
        calls.append((event.id, event.attempt))
        tries[event.id] = tries.get(event.id, 0) + 1
        if tries[event.id] == 1:
            raise RetryLater(1)  # attempt 1 fails and reports back
        if tries[event.id] == 2:
            raise SystemExit("a neighbour kills the worker during attempt 2")

    registry.handler("dsync.*", name="h", max_attempts=2)(handler)
    yard.deliver(envelope("event_1", 1))
    _run_through_deaths(yard)
    # Then attempt 3 ran (alone) and completed: attempts never reported back do not make a WorkerLost by themselves
    assert calls == [("event_1", 1), ("event_1", 2), ("event_1", 3)]
    assert yard.dead_letters() == []


def test_an_event_that_dies_alone_is_dead_lettered_as_worker_lost(registry: Registry, yard: Harness) -> None:
    calls: list[tuple[str, int]] = []

    def handler(event: Event) -> None:
        calls.append((event.id, event.attempt))
        raise SystemExit("this event kills its worker every time")

    registry.handler("dsync.*", name="h", max_attempts=2)(handler)
    yard.deliver(envelope("event_1", 1))
    _run_through_deaths(yard)
    [letter] = yard.dead_letters()
    assert letter["error_type"] == "WorkerLost"
    assert calls == [("event_1", 1), ("event_1", 2)]


def test_the_suspect_is_the_event_that_was_running_not_the_new_head(registry: Registry, yard: Harness) -> None:
    alone: list[tuple[str, bool]] = []
    registry.handler("dsync.*", name="h")(lambda e: None)
    yard.deliver(envelope("event_k", 5))
    admitted = yard.ingester.ingest_once()
    assert admitted is not None
    [(shard, pair_id)] = admitted.wake
    # Given a run of event_k that never reports back, and an earlier-issued event arriving meanwhile
    lost = yard.store.pairs.claim(shard, pair_id, "lost-run", yard.clock())
    assert isinstance(lost, Claim) and lost.event_id == "event_k"
    yard.deliver(envelope("event_e", 1))
    yard.ingester.ingest_once()
    yard.clock.advance(60)
    # Then the earlier event is claimed as an ordinary run, and the lost one comes back as the suspect
    for _ in range(2):
        claimed = yard.store.pairs.claim(shard, pair_id, "next", yard.clock())
        assert isinstance(claimed, Claim)
        alone.append((claimed.event_id, claimed.suspect))
        yard.store.pairs.complete(claimed, yard.clock(), wake=False)
    assert alone == [("event_e", False), ("event_k", True)]


def test_a_replayed_letter_goes_on_counting_attempts(registry: Registry, yard: Harness) -> None:
    calls: list[int] = []

    def handler(event: Event) -> None:
        calls.append(event.attempt)
        if len(calls) <= 2:
            raise ValueError("broken until the fix")

    registry.handler("dsync.*", name="h", max_attempts=2, min_backoff=0.1, max_backoff=0.1)(handler)
    yard.deliver(envelope("event_1", 1))
    yard.run()
    assert [d["attempts"] for d in yard.dead_letters()] == [2]
    # When the letter is replayed (its old call might even still be running), its calls never say 1 or 2 again
    assert yard.replay("event_1", "h")
    yard.run()
    assert calls == [1, 2, 3]
    assert yard.dead_letters() == []


def test_waiting_for_live_calls_ignores_abandoned_ones_and_wakes_when_the_last_ends() -> None:
    rec = Recorder()
    inflight = rec.inflight()
    hung = Call(spec(timeout_s=1.0), Lease(claim("a"), 1e12), started=0.0, gate=inflight.gate, slot="shared")
    live = Call(spec(timeout_s=60), Lease(claim("b"), 1e12), started=0.0, gate=inflight.gate, slot="shared")
    for call in (hung, live):
        assert inflight.gate.try_enter_shared()
        inflight.start(call)
    inflight.tick(now=5.0)  # the first call passes its timeout and is abandoned
    assert inflight.wait_for_live_calls(0.01) == 1
    # When the live call ends on another thread, a waiter wakes without waiting out its timeout
    ender = threading.Timer(0.05, inflight.end, args=(live,))
    ender.start()
    assert inflight.wait_for_live_calls(30) == 0
    ender.join()
