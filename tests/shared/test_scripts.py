"""The Lua scripts: each call touches one hash slot (so the store runs on Redis Cluster), every script is used,
and the Lua and Python readings of a pair's state agree on when an event may run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.cluster
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from processor import Event, Registry, RetryLater, deadletters
from processor.records import Claim, PairState
from processor.testing import Harness
from shared import keys, scripts
from tests.conftest import StoreUnderTest

T0 = "2026-01-01T00:00:"


class ScriptSpy:
    """Records the keys of every script call made through a client (plain calls and pipelines alike)."""

    def __init__(self, client: redis.Redis) -> None:
        self.calls: list[tuple[str, list[Any]]] = []
        self._names = {client.register_script(scripts.source(n)).sha: n for n in scripts.PAIR_SCRIPTS}
        self._names |= {client.register_script(scripts.source(n)).sha: n for n in scripts.PLAIN_SCRIPTS}

    def seen(self, sha: str, numkeys: int, *rest: Any) -> None:
        self.calls.append((self._names.get(sha, sha), list(rest[:numkeys])))


@pytest.fixture
def spied(store: StoreUnderTest, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Harness, ScriptSpy, Registry]]:
    """A harness on one server and on a real cluster (where a call spanning slots fails with CROSSSLOT)."""
    registry = Registry()
    harness = Harness(registry, redis_url=store.url, reorder_window_s=1, dead_letter_retention_s=60)
    spy = ScriptSpy(harness.client)
    original = redis.Redis.evalsha
    original_pipe = redis.client.Pipeline.evalsha
    original_cluster = redis.cluster.RedisCluster.evalsha

    def cluster_evalsha(self: Any, sha: str, numkeys: int, *rest: Any) -> Any:
        spy.seen(sha, numkeys, *rest)
        return original_cluster(self, sha, numkeys, *rest)

    def evalsha(self: Any, sha: str, numkeys: int, *rest: Any) -> Any:
        spy.seen(sha, numkeys, *rest)
        return original(self, sha, numkeys, *rest)

    def pipe_evalsha(self: Any, sha: str, numkeys: int, *rest: Any) -> Any:
        spy.seen(sha, numkeys, *rest)
        return original_pipe(self, sha, numkeys, *rest)

    monkeypatch.setattr(redis.Redis, "evalsha", evalsha)
    monkeypatch.setattr(redis.client.Pipeline, "evalsha", pipe_evalsha)
    monkeypatch.setattr(redis.cluster.RedisCluster, "evalsha", cluster_evalsha)
    yield harness, spy, registry
    harness.close()


def test_every_script_call_touches_one_hash_slot(spied: tuple[Harness, ScriptSpy, Registry]) -> None:
    yard, spy, registry = spied
    tries: dict[str, int] = {}

    def flaky(event: Event) -> None:
        tries[event.id] = tries.get(event.id, 0) + 1
        if event.data["id"] == "user_dead":
            raise ValueError("always")
        if tries[event.id] == 1:
            raise RetryLater(1)

    registry.handler("dsync.*", name="flaky", max_attempts=2, min_backoff=0.1, max_backoff=0.1)(flaky)
    registry.handler("dsync.*", name="late", late="skip", order_by="none")(lambda e: None)
    # Given traffic that exercises every step: new events, duplicates, retries, a dead letter, a replay, a trim
    for i in range(12):
        body = {"id": f"event_{i}", "event": "dsync.user.updated", "data": {"id": f"user_{i % 4}"},
                "created_at": f"{T0}{i:02d}Z"}  # fmt: skip
        yard.deliver(body)
        yard.deliver(body)
    yard.deliver({"id": "event_x", "event": "dsync.user.updated", "data": {"id": "user_dead"}, "created_at": f"{T0}1Z"})
    yard.run()
    yard.store.pairs.renew(0, "nothing", "token", yard.clock())
    yard.store.upkeep.heartbeat("host:1", yard.clock(), {"abandoned": 0})
    letters = deadletters.list_letters(yard.client, "dead")
    assert letters
    deadletters.replay(yard.store, letters, yard.clock())
    yard.run()
    archived = yard.store.archive.get("workos", "event_0")
    assert archived is not None
    assert archived.routes
    assert yard.store.pairs.resend(archived.routes[0], archived, yard.clock()) == "resent"
    yard.run()
    yard.deliver({"id": "event_r", "event": "dsync.user.updated", "data": {"id": "u"}, "created_at": f"{T0}30Z"})
    yard.ingester.ingest_once()
    yard.clock.advance(2)
    for shard, pair_id in yard.store.upkeep.sweep(yard.clock()):
        claimed = yard.store.pairs.claim(shard, pair_id, "token", yard.clock())
        if isinstance(claimed, Claim):
            yard.store.pairs.release(claimed, yard.clock())
    yard.clock.advance(120)
    yard.store.upkeep.trim_letters(yard.clock())
    yard.store.inbox.release_lease(yard.ingester.token)
    yard.store.inbox.park_poison(b"x", "test")
    # Then every script ran, and every call's keys lay in one hash slot
    used = {name for name, _ in spy.calls}
    # (the receiver's two scripts are run by the receiver: tests/receiver/test_inbox_cluster.py)
    assert used >= set(scripts.PAIR_SCRIPTS + scripts.PLAIN_SCRIPTS) - {"inbox_append", "inbox_width"}
    for name, called_keys in spy.calls:
        slots = {key_slot(k if isinstance(k, bytes) else str(k).encode()) for k in called_keys}
        assert len(slots) == 1, (name, called_keys)


@pytest.mark.parametrize("shard", [0, 1, keys.INBOX_SHARDS_MAX - 1])
def test_an_inbox_shards_keys_share_a_slot(shard: int) -> None:
    ik = keys.inbox_keys(shard)
    assert len({key_slot(k.encode()) for k in (ik.queue, ik.wake, ik.lease)}) == 1


def test_inbox_shards_spread_over_slots() -> None:
    slots = {key_slot(keys.inbox_keys(shard).queue.encode()) for shard in range(keys.INBOX_SHARDS_MAX)}
    assert len(slots) == keys.INBOX_SHARDS_MAX


@settings(max_examples=60, deadline=None)
@given(
    received=st.integers(0, 2**40),
    not_before=st.integers(0, 2**40),
    replay=st.booleans(),
    window=st.integers(0, 600_000),
    ephemeral=st.booleans(),
)
def test_lua_and_python_agree_on_when_an_event_may_run(
    redis_server: Any, received: int, not_before: int, replay: bool, window: int, ephemeral: bool
) -> None:
    client = redis.Redis.from_url(redis_server.url)
    try:
        pk = keys.pair_keys(0, "agree")
        client.hset(pk.pair, "ephemeral", "1" if ephemeral else "0")
        raw = f"{received}|{not_before}|0|0|0|{int(replay)}"
        client.hset(pk.state, "e", raw)
        probe = scripts.source("claim").rsplit("\n-- Take the pair's head event", 1)[0]
        pair_keys = (pk.pair, pk.queue, pk.state, pk.due, pk.stats, pk.body)
        header = (0, window, 0, 0, 0)
        lua = int(client.eval(probe + "\nreturn fmt(runnable_at(read_state('e'), A.window))", 6, *pair_keys, *header))
        state = PairState.parse(raw)
        assert state is not None
        assert lua == state.runnable_at(0 if ephemeral else window)
    finally:
        client.delete(keys.pair_keys(0, "agree").pair, keys.pair_keys(0, "agree").state)
        client.close()
