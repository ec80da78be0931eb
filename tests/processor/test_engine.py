"""The worker engine without a Dramatiq worker running: wake-ups land in Dramatiq's queue; the sweep backs off."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
import redis

from processor.engine import Engine
from processor.handlers import Registry
from shared import keys
from shared.settings import Settings
from shared.wire import QueuedEvent, encode_message
from tests.processor.test_worker_processes import wait_for


@pytest.fixture
def engine(redis_url: str) -> Iterator[Engine]:
    registry = Registry()
    registry.handler("dsync.*", order_by="none", name="sink")(lambda e: None)
    settings = Settings.from_env(
        {"REDIS_URL": redis_url, "HOOKYARD_WORKER_THREADS": "2", "HOOKYARD_WORKERS": "1"}, require_secret=False
    )
    built = Engine(settings, registry)
    yield built
    built.close()


def _deliver(client: redis.Redis, n: int, now_ms: int) -> None:
    for i in range(n):
        body = orjson.dumps({"id": f"event_{i}", "event": "dsync.user.updated", "data": {"id": f"u{i}"}})
        client.rpush(keys.INBOX, encode_message(QueuedEvent("workos", f"event_{i}", "dsync.user.updated",
                                                            now_ms, now_ms, body)))  # fmt: skip


def test_ingest_sends_wakeups_through_dramatiq(engine: Engine, redis_client: redis.Redis) -> None:
    _deliver(redis_client, 3, engine.clock_ms())
    result = engine.ingester.ingest_once()
    assert result is not None
    assert result.new == 3
    engine.send_wake(result.wake, "ingest")
    assert engine.wakes.flush(10)  # sent from the engine's wake-sender thread
    # Each unordered event is its own pair; with two threads they are spread over messages of up to 2 pairs
    assert redis_client.llen(keys.WAKE_QUEUE) >= 2


def test_the_sweep_holds_back_while_enough_wakeups_are_queued(engine: Engine, redis_client: redis.Redis) -> None:
    # Given due pairs whose wake-ups are not yet sent (admitted, then the reservation lapsed)
    _deliver(redis_client, 3, engine.clock_ms())
    result = engine.ingester.ingest_once()
    assert result is not None
    engine.clock_ms = lambda: 10**13  # far in the future: every reservation has lapsed
    # And Dramatiq's queue already holding plenty of wake-ups (4 x threads x workers), as the sender has read it
    redis_client.rpush(keys.WAKE_QUEUE, *[f"m{i}" for i in range(8)])
    wait_for(lambda: engine.wakes.queued() == 8, 10, "the queue depth to be read")
    # Then the sweep sends nothing and the pairs stay due
    assert engine.loops.sweep_once() == 0
    assert sum(redis_client.zcard(keys.due_key(s)) for s in range(keys.SHARDS)) == 3
    # When the queue drains, the next sweep wakes them
    redis_client.delete(keys.WAKE_QUEUE)
    wait_for(lambda: engine.wakes.queued() == 0, 10, "the drained queue to be read")
    assert engine.loops.sweep_once() == 3
