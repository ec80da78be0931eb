"""Failure modes found in review: Redis refusing writes, crash loops, unknown handlers, shutdown, lease holds."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest
import redis

from processor import Registry
from processor.engine import Engine
from processor.records import Claim
from processor.store import Store
from processor.testing import Harness
from shared.errors import StoreUnavailable
from shared.settings import Settings

ENVELOPE = {
    "id": "event_1",
    "event": "dsync.user.updated",
    "data": {"id": "user_1"},
    "created_at": "2026-01-01T00:00:01Z",
}


@pytest.fixture
def harness_options() -> dict[str, Any]:
    return {"reorder_window_s": 0}


def test_a_full_redis_is_an_outage_not_a_bug(yard: Harness, redis_client: redis.Redis) -> None:
    redis_client.config_set("maxmemory", "1")
    try:
        with pytest.raises(StoreUnavailable):
            yard.store.upkeep.heartbeat("w:1", yard.clock())
    finally:
        redis_client.config_set("maxmemory", "0")
    yard.store.upkeep.heartbeat("w:1", yard.clock())


def test_a_loop_survives_unexpected_errors(redis_url: str) -> None:
    settings = Settings.from_env({"REDIS_URL": redis_url}, require_secret=False)
    engine = Engine(settings, Registry())
    try:
        calls = []
        stop = threading.Event()

        def step() -> float:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("a bug in one round")
            if len(calls) == 2:
                raise StoreUnavailable("redis: down")
            stop.set()
            return 0.0

        engine.loops._guarded(step, stop)
        assert len(calls) == 3
    finally:
        engine.close()


def test_an_event_that_kills_its_worker_every_time_is_set_aside(registry: Registry, yard: Harness) -> None:
    registry.handler("dsync.*", name="fragile", max_attempts=2)(lambda e: None)
    yard.deliver(ENVELOPE)

    def worker_dies(*args: object, **kwargs: object) -> object:
        raise SystemExit("killed while running this event")

    real_complete = yard.store.pairs.complete
    yard.store.pairs.complete = worker_dies  # type: ignore[method-assign]
    # Given a worker that dies during each of the two allowed attempts
    for _ in range(2):
        with pytest.raises(SystemExit):
            yard.step()
        yard.clock.advance(11)  # the dead worker's lease lapses
    yard.store.pairs.complete = real_complete  # type: ignore[method-assign]
    # When the pair is claimed a third time, the event becomes a dead letter instead of a third crash
    yard.run()
    [dead] = yard.dead_letters()
    assert (dead["event_id"], dead["error_type"], dead["attempts"]) == ("event_1", "WorkerLost", 3)


def test_an_unknown_handler_gives_the_pair_back_uncounted(registry: Registry, redis_url: str) -> None:
    # Given an event admitted by a worker that has handler "newer"
    registry.handler("dsync.*", name="newer")(lambda e: None)
    admitting = Harness(registry, redis_url=redis_url, reorder_window_s=0)
    admitting.deliver(ENVELOPE)
    result = admitting.ingester.ingest_once()
    assert result is not None
    [(shard, pid)] = result.wake
    # When a worker without that handler (an older deploy) runs the pair
    older = Harness(Registry(), redis_url=redis_url, reorder_window_s=0)
    try:
        older.clock.set(admitting.clock())
        assert older.runner.run_pairs(shard, [pid]) == 1
        # Then nothing was counted or dead-lettered, and the pair is due again in 30 s for another worker
        claim = admitting.store.pairs.claim(shard, pid, "t", admitting.clock() + 30_000)
        assert isinstance(claim, Claim)
        assert claim.attempt == 1
        assert older.dead_letters() == []
    finally:
        older.close()
        admitting.close()


def test_a_stopping_runner_gives_unstarted_claims_back(registry: Registry, yard: Harness) -> None:
    seen: list[str] = []
    registry.handler("dsync.*", name="sink", order_by="none")(lambda e: seen.append(e.id))
    for i in range(3):
        yard.deliver({**ENVELOPE, "id": f"event_{i}", "data": {"id": f"user_{i}"}})
    result = yard.ingester.ingest_once()
    assert result is not None
    by_shard: dict[int, list[str]] = {}
    for shard, pid in result.wake:
        by_shard.setdefault(shard, []).append(pid)
    # When the worker is shutting down as a wake-up arrives
    yard.runner.stopping.set()
    for shard, pids in by_shard.items():
        yard.runner.run_pairs(shard, pids)
    assert len(seen) <= len(by_shard)  # at most the first pair of each wake-up started before the check
    # Then what was not run is back in the queue, its attempt not counted, and runs normally later
    yard.runner.stopping.clear()
    yard.run()
    assert sorted(seen) == ["event_0", "event_1", "event_2"]
    assert yard.dead_letters() == []


def test_releasing_an_old_claim_keeps_a_newer_hold(yard: Harness) -> None:
    keeper = yard.runner.lease_keeper
    old = Claim(0, "pair", "token-a", "e", 0, 1, False, False, 0, 0, "h", "workos", "k", b"")
    new = Claim(0, "pair", "token-b", "e", 0, 2, False, False, 0, 0, "h", "workos", "k", b"")
    newer = keeper.lease(new)
    keeper.hold(newer)
    keeper.release(keeper.lease(old))
    assert keeper.held() == [newer]


def test_an_event_whose_bytes_the_store_lost_waits_instead_of_dying(
    registry: Registry, yard: Harness, redis_client: redis.Redis
) -> None:
    # Given an event admitted for a handler, whose queued bytes then vanish from its pair (a slot half-moved when
    # a primary died mid-migration leaves keys behind on the other node)
    seen: list[tuple[str, int]] = []
    registry.handler("dsync.*", name="keeper")(lambda event: seen.append((event.id, event.attempt)))
    yard.deliver(ENVELOPE)
    yard.ingester.ingest_once()
    [body_key] = [k for k in redis_client.scan_iter(match="{hy:*}:body:*")]
    saved = redis_client.hgetall(body_key)
    redis_client.delete(body_key)
    # When the workers get to it, again and again over two minutes
    for _ in range(5):
        yard.advance(31)
    # Then it is neither called nor dead-lettered: it waits, uncounted
    assert seen == []
    assert yard.dead_letters() == []
    # And once the bytes are back (the slot repaired), it runs once, as its first attempt
    redis_client.hset(body_key, mapping=saved)
    yard.advance(31)
    yard.run()
    assert seen == [("event_1", 1)]


def test_a_claim_no_replica_confirmed_is_given_back_uncounted(
    registry: Registry, yard: Harness, redis_client: redis.Redis
) -> None:
    # Given an admitted event, and a store that needs one replica per claim on a server that has none
    registry.handler("dsync.*", name="keeper")(lambda event: None)
    yard.deliver(ENVELOPE)
    result = yard.ingester.ingest_once()
    assert result is not None and result.wake
    [(shard, pair_id)] = result.wake
    strict = Store(yard.client, dataclasses.replace(yard.store.timings, min_replicas=1))
    # When a runner claims it, Then the claim is refused as an outage
    with pytest.raises(StoreUnavailable, match="0 of 1 replicas"):
        strict.pairs.claim(shard, pair_id, "runner-a", yard.clock())
    # And it was given back at once, uncounted: the next claim is its first attempt, not a suspect
    again = yard.store.pairs.claim(shard, pair_id, "runner-b", yard.clock())
    assert isinstance(again, Claim)
    assert (again.attempt, again.suspect) == (1, False)
