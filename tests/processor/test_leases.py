"""Leases and fencing on a real Redis: one runner per (handler, key); a runner whose lease lapsed is fenced."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from processor import Registry
from processor.records import Claim, DeadLetter
from processor.testing import Harness

ENVELOPE = {
    "id": "event_1",
    "event": "dsync.user.updated",
    "data": {"id": "user_1"},
    "created_at": "2026-01-01T00:00:01Z",
}


LETTER = DeadLetter("event_1", "sync", "workos", "user_1", "pair", 0, 0, "E", "m", 1, 0, 0)


@pytest.fixture
def yard(redis_url: str) -> Iterator[Harness]:
    registry = Registry()
    registry.handler("dsync.*", name="sync")(lambda e: None)
    harness = Harness(registry, redis_url=redis_url, reorder_window_s=0, lease_s=10, wake_grace_s=10)
    yield harness
    harness.close()


def _pair(yard: Harness) -> tuple[int, str]:
    yard.deliver(ENVELOPE)
    result = yard.ingester.ingest_once()
    assert result is not None
    [(shard, pid)] = result.wake
    return shard, pid


def test_a_held_pair_cannot_be_claimed_twice(yard: Harness) -> None:
    shard, pid = _pair(yard)
    first = yard.store.pairs.claim(shard, pid, "runner-a", yard.clock())
    assert isinstance(first, Claim)
    assert yard.store.pairs.claim(shard, pid, "runner-b", yard.clock()) == "busy"
    yard.clock.advance(9.9)
    assert yard.store.pairs.claim(shard, pid, "runner-b", yard.clock()) == "busy"


def test_a_paused_runner_is_fenced_after_its_lease_lapsed(yard: Harness) -> None:
    shard, pid = _pair(yard)
    # Given runner A claimed the event and then paused past its lease
    paused = yard.store.pairs.claim(shard, pid, "runner-a", yard.clock())
    assert isinstance(paused, Claim)
    yard.clock.advance(11)
    # When the sweep hands the pair to runner B
    assert (shard, pid) in yard.store.upkeep.sweep(yard.clock())
    taken = yard.store.pairs.claim(shard, pid, "runner-b", yard.clock())
    assert isinstance(taken, Claim)
    assert (taken.event_id, taken.attempt) == ("event_1", 2)
    # Then A can neither complete, fail nor renew; B completes
    assert yard.store.pairs.complete(paused, yard.clock(), wake=False).outcome == "fenced"
    assert yard.store.pairs.fail(
        paused, yard.clock(), retry_at_ms=0, max_attempts=1, letter=LETTER, wake=False
    ).outcome == ("fenced")
    assert not yard.store.pairs.renew(shard, pid, "runner-a", yard.clock())
    assert yard.store.pairs.complete(taken, yard.clock(), wake=False).outcome == "ok"
    assert yard.dead_letters() == []


def test_renewal_keeps_a_slow_runner_its_pair(yard: Harness) -> None:
    shard, pid = _pair(yard)
    claim = yard.store.pairs.claim(shard, pid, "runner-a", yard.clock())
    assert isinstance(claim, Claim)
    for _ in range(5):
        yard.clock.advance(8)
        assert yard.store.pairs.renew(shard, pid, "runner-a", yard.clock())
        assert yard.store.upkeep.sweep(yard.clock()) == []
    assert yard.store.pairs.complete(claim, yard.clock(), wake=False).outcome == "ok"


def test_the_only_rerun_after_success_is_a_crash_before_completion_was_recorded(redis_url: str) -> None:
    calls: list[int] = []
    registry = Registry()
    registry.handler("dsync.*", name="effect")(lambda e: calls.append(e.attempt))
    harness = Harness(registry, redis_url=redis_url, reorder_window_s=0)
    try:
        harness.deliver(ENVELOPE)
        real_complete = harness.store.pairs.complete

        def crash_before_recording(*args: object, **kwargs: object) -> object:
            raise SystemExit("worker killed after the handler returned")

        # Given a worker that dies after the handler returned, before `complete` reached Redis
        harness.store.pairs.complete = crash_before_recording  # type: ignore[method-assign]
        with pytest.raises(SystemExit):
            harness.step()
        assert calls == [1]
        # When another worker picks the pair up after the lease lapsed
        harness.store.pairs.complete = real_complete  # type: ignore[method-assign]
        harness.run()
        # Then the handler is called again, told by attempt == 2 — and never a third time
        assert calls == [1, 2]
        harness.deliver(ENVELOPE)
        harness.run()
        assert calls == [1, 2]
    finally:
        harness.close()
