"""Bounds on what one bad input or a long outage can cost: an issued time far in the future, dead letters and
skipped records past their retention or beyond their limit, and the poison list."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from processor import Event, Registry
from processor.decode import bound_issued_ms
from processor.stats import read_snapshot
from processor.store import inbox as inbox_module
from processor.testing import Harness
from shared import keys

T0 = "2026-01-01T00:00:"


def envelope(eid: str, created_at: str, rid: str = "user_1") -> dict[str, Any]:
    return {"id": eid, "event": "dsync.user.updated", "data": {"id": rid}, "created_at": created_at}


@pytest.fixture
def harness_options() -> dict[str, Any]:
    return {"retention_s": 60, "dead_letter_retention_s": 600}


def test_bound_issued_ms() -> None:
    assert bound_issued_ms(1_000, 5_000, 180_000) == 1_000  # the past is trusted
    assert bound_issued_ms(185_000, 5_000, 180_000) == 185_000  # within the tolerance ahead
    assert bound_issued_ms(185_001, 5_000, 180_000) == 5_000  # beyond it: the receipt time stands in


def test_a_far_future_created_at_does_not_make_its_key_late(registry: Registry, yard: Harness) -> None:
    seen: list[tuple[str, bool, int]] = []
    registry.handler("dsync.*")(lambda e: seen.append((e.id, e.late, int(e.issued_at.timestamp() * 1000))))
    received = yard.clock()
    # Given an event claiming to be issued in 2099, then ordinary events of the same user issued after its receipt
    yard.deliver(envelope("event_future", "2099-01-01T00:00:00.000Z"), sender_clock_ok=False)
    yard.run()
    yard.clock.advance(10)
    yard.deliver(envelope("event_next", "2026-01-01T00:00:09.000Z"))
    yard.run()
    # Then the future event is ordered (and shown) at its receipt time, and the later one is not late
    assert seen[0] == ("event_future", False, received)
    assert seen[1][:2] == ("event_next", False)


def always_fails(event: Event) -> None:
    raise RuntimeError("downstream refuses")


def test_dead_letters_keep_their_bytes_then_expire(
    registry: Registry, yard: Harness, redis_client: redis.Redis
) -> None:
    registry.handler("dsync.*", name="fails", max_attempts=1)(always_fails)
    # Given a dead letter, with events kept 60 s and letters 600 s
    yard.deliver(envelope("event_1", f"{T0}01.000Z"))
    yard.run()
    assert [d["event_id"] for d in yard.dead_letters()] == ["event_1"]
    archive = keys.event_keys("workos", "event_1").archive
    # Then its archived bytes are kept as long as the letter, not just the event's 60 s
    assert redis_client.pttl(archive) > 60_000
    assert yard.store.upkeep.trim_letters(yard.clock()) == {}
    # When the letter's retention has passed, the trim drops it and counts it
    yard.clock.advance(601)
    assert yard.store.upkeep.trim_letters(yard.clock()) == {"dead:fails": 1}
    assert yard.dead_letters() == []
    snapshot = read_snapshot(redis_client, yard.clock())
    assert snapshot.handlers["fails"].dead == 0
    assert snapshot.handlers["fails"].expired == {"dead": 1}


def test_dead_letters_are_bounded_across_shards(registry: Registry, redis_url: str, redis_client: redis.Redis) -> None:
    registry.handler("dsync.*", name="fails", max_attempts=1)(always_fails)
    with Harness(registry, redis_url=redis_url, dead_letter_limit=16) as yard:
        # Given 25 dead letters of one hot key (one shard) and 15 spread over other keys, oldest first
        for i in range(40):
            rid = "user_hot" if i < 25 else f"user_{i}"
            yard.deliver(envelope(f"event_{i:02d}", f"{T0}{i:02d}.000Z", rid=rid))
            yard.run()
            yard.clock.advance(1)
        assert len(yard.dead_letters()) == 40
        dropped = yard.store.upkeep.trim_letters(yard.clock())
        kept = sorted(d["event_id"] for d in yard.dead_letters())
    # Then the 16 newest are kept, wherever they live, and every drop is counted
    assert kept == [f"event_{i:02d}" for i in range(24, 40)]
    assert dropped == {"dead:fails": 24}
    assert read_snapshot(redis_client, 0).handlers["fails"].dead == 16


def test_the_poison_list_is_bounded(yard: Harness, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inbox_module, "POISON_LIMIT", 3)
    for i in range(5):
        yard.store.inbox.park_poison(f"garbage {i}".encode(), "WireFormatError: test")
    kept = redis_client.lrange(keys.INBOX_POISON, 0, -1)
    assert [line.split(b"\n")[1] for line in kept] == [b"garbage 2", b"garbage 3", b"garbage 4"]
