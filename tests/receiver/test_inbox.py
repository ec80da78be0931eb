"""Tests for receiver/inbox.py: batched durable appends, timeouts and draining, against a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis
from redis.asyncio import Redis

from processor.devtools.embedded_redis import EmbeddedRedis
from receiver.inbox import InboxWriter
from receiver.metrics import ReceiverMetrics
from shared.errors import StoreUnavailable
from shared.keys import INBOX, INBOX_WAKE
from shared.redis_clients import async_redis_client, receiver_hot_path
from shared.settings import Settings


@pytest.fixture
async def async_redis(settings: Settings) -> AsyncIterator[Redis]:
    client = async_redis_client(settings.redis_url, receiver_hot_path(settings.enqueue_timeout_s))
    yield client
    await client.aclose()


def _batch_sizes(metrics: ReceiverMetrics) -> tuple[float, float]:
    registry = metrics.registry
    count = registry.get_sample_value("hookyard_receiver_enqueue_batch_size_count") or 0.0
    total = registry.get_sample_value("hookyard_receiver_enqueue_batch_size_sum") or 0.0
    return count, total


async def test_append_returns_after_the_message_is_in_redis(async_redis: Redis, redis_client: redis.Redis) -> None:
    writer = InboxWriter(async_redis, timeout_s=2.0)

    await writer.append(b"one")
    await writer.append(b"two")

    assert redis_client.lrange(INBOX, 0, -1) == [b"one", b"two"]
    assert redis_client.lrange(INBOX_WAKE, 0, -1) == [b"1"]
    await writer.close()


async def test_concurrent_appends_share_writes(async_redis: Redis, redis_client: redis.Redis) -> None:
    metrics = ReceiverMetrics(["workos"])
    writer = InboxWriter(async_redis, timeout_s=2.0, metrics=metrics)
    messages = [b"m%03d" % n for n in range(300)]

    await asyncio.gather(*(writer.append(m) for m in messages))

    assert sorted(redis_client.lrange(INBOX, 0, -1)) == messages
    writes, carried = _batch_sizes(metrics)
    assert carried == 300
    assert writes < 300
    await writer.close()


async def test_a_batch_never_exceeds_its_caps(async_redis: Redis, redis_client: redis.Redis) -> None:
    metrics = ReceiverMetrics(["workos"])
    writer = InboxWriter(async_redis, timeout_s=2.0, metrics=metrics, max_batch_messages=8)
    messages = [b"m%03d" % n for n in range(100)]

    await asyncio.gather(*(writer.append(m) for m in messages))

    writes, carried = _batch_sizes(metrics)
    assert carried == 100
    assert writes >= 100 / 8
    over_eight = metrics.registry.get_sample_value("hookyard_receiver_enqueue_batch_size_bucket", {"le": "8.0"})
    assert over_eight == writes  # every write carried at most 8
    assert sorted(redis_client.lrange(INBOX, 0, -1)) == messages
    await writer.close()


async def test_byte_cap_splits_large_messages(async_redis: Redis, redis_client: redis.Redis) -> None:
    metrics = ReceiverMetrics(["workos"])
    writer = InboxWriter(async_redis, timeout_s=2.0, metrics=metrics, max_batch_bytes=2500)
    messages = [bytes([65 + n]) * 1000 for n in range(6)]

    await asyncio.gather(*(writer.append(m) for m in messages))

    writes, _ = _batch_sizes(metrics)
    assert writes >= 3  # at most two 1000-byte messages fit in 2500 bytes
    assert sorted(redis_client.lrange(INBOX, 0, -1)) == messages
    await writer.close()


async def test_redis_down_raises_store_unavailable(redis_server: EmbeddedRedis, async_redis: Redis) -> None:
    writer = InboxWriter(async_redis, timeout_s=2.0)
    await writer.append(b"warm")  # a pooled connection exists and will be found dead

    redis_server.stop()
    results = await asyncio.gather(*(writer.append(b"x") for _ in range(5)), return_exceptions=True)

    assert all(isinstance(r, StoreUnavailable) for r in results)
    await writer.close()


async def test_unconfirmed_write_times_out_as_store_unavailable(async_redis: Redis, redis_client: redis.Redis) -> None:
    # Given Redis holding every write for longer than the enqueue timeout
    writer = InboxWriter(async_redis, timeout_s=0.2)
    await writer.append(b"warm")
    redis_client.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()

        # When an append waits for its confirmation
        with pytest.raises(StoreUnavailable):
            await writer.append(b"late")

        # Then it fails at the deadline rather than when Redis gets round to it
        assert loop.time() - started < 1.0
    finally:
        redis_client.execute_command("CLIENT", "UNPAUSE")
    await writer.append(b"after")
    assert redis_client.lrange(INBOX, -1, -1) == [b"after"]
    await writer.close()


async def test_close_settles_every_pending_append(async_redis: Redis, redis_client: redis.Redis) -> None:
    writer = InboxWriter(async_redis, timeout_s=2.0, max_batch_messages=4)
    appends = [asyncio.ensure_future(writer.append(b"m%02d" % n)) for n in range(20)]
    await asyncio.sleep(0)  # every append is now pending or in flight

    await writer.close()
    results = await asyncio.gather(*appends, return_exceptions=True)

    assert results == [None] * 20
    assert redis_client.llen(INBOX) == 20
    assert writer.pending == 0


async def test_append_after_close_is_refused(async_redis: Redis) -> None:
    writer = InboxWriter(async_redis, timeout_s=2.0)
    await writer.close()

    with pytest.raises(StoreUnavailable):
        await writer.append(b"too late")


async def test_an_append_cancelled_while_waiting_is_not_written(async_redis: Redis, redis_client: redis.Redis) -> None:
    # Given a write in flight that Redis holds for a while
    writer = InboxWriter(async_redis, timeout_s=5.0)
    await writer.append(b"warm")
    redis_client.execute_command("CLIENT", "PAUSE", "300", "WRITE")
    first = asyncio.ensure_future(writer.append(b"first"))
    while writer.pending:  # the flusher has taken "first"
        await asyncio.sleep(0.005)

    # When two more appends queue behind it and one is cancelled (its request went away)
    dropped = asyncio.ensure_future(writer.append(b"dropped"))
    kept = asyncio.ensure_future(writer.append(b"kept"))
    await asyncio.sleep(0)
    dropped.cancel()
    await asyncio.gather(first, kept)

    # Then the cancelled one is skipped by the next write
    with pytest.raises(asyncio.CancelledError):
        await dropped
    assert redis_client.lrange(INBOX, 0, -1) == [b"warm", b"first", b"kept"]
    await writer.close()


async def test_scripts_flushed_from_redis_are_sent_again(async_redis: Redis, redis_client: redis.Redis) -> None:
    # Given a writer whose script Redis has cached, then forgotten (as after a restart without persistence)
    writer = InboxWriter(async_redis, timeout_s=2.0)
    await writer.append(b"before")
    redis_client.script_flush()

    # When it appends again, the write still lands, once
    await writer.append(b"after")

    assert redis_client.lrange(INBOX, 0, -1) == [b"before", b"after"]
    await writer.close()


async def test_the_writer_reconnects_after_redis_comes_back(
    redis_server: EmbeddedRedis, async_redis: Redis, redis_client: redis.Redis
) -> None:
    # Given a writer whose connection Redis dropped by going away
    writer = InboxWriter(async_redis, timeout_s=1.0)
    await writer.append(b"before")
    redis_server.stop()
    with pytest.raises(StoreUnavailable):
        await writer.append(b"lost")

    # When Redis is back, the next append opens a fresh connection and lands
    redis_server.start()
    await writer.append(b"after")

    assert redis_client.lrange(INBOX, -1, -1) == [b"after"]
    await writer.close()


async def test_close_gives_the_connection_back_to_the_pool(async_redis: Redis) -> None:
    writer = InboxWriter(async_redis, timeout_s=2.0)
    await writer.append(b"one")
    pool = async_redis.connection_pool
    # redis-py has no public count of checked-out connections
    assert len(pool._in_use_connections) == 1  # held by the writer between writes

    await writer.close()

    assert len(pool._in_use_connections) == 0


async def test_with_min_replicas_and_no_replica_an_append_is_refused_but_kept(
    async_redis: Redis, redis_client: redis.Redis
) -> None:
    # Given one server without replicas, and a writer that needs one replica to confirm each append
    writer = InboxWriter(async_redis, timeout_s=0.5, min_replicas=1)
    # When an append is made, Then it is refused (503: the sender retries, the processor drops the duplicate)
    with pytest.raises(StoreUnavailable, match="0 of 1 replicas confirmed"):
        await writer.append(b"unreplicated")
    # And the primary kept it all the same: a refusal never loses what was written
    assert redis_client.lrange(INBOX, 0, -1) == [b"unreplicated"]
    await writer.close()
