"""The receiver's appends on a real Redis Cluster: spread over inbox shards, through a live slot migration and a
primary's failover (latency only: a 503 the sender retries, never a lost acknowledged append), and acknowledged
only once a replica holds them when HOOKYARD_MIN_REPLICAS asks for it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator

import pytest
import redis
from redis.asyncio import Redis
from redis.crc import key_slot

from processor.devtools.embedded_cluster import EmbeddedCluster
from receiver import create_app
from receiver.inbox import InboxWriter
from receiver.inbox_shards import ShardedInbox
from shared import keys
from shared.errors import StoreUnavailable
from shared.redis_clients import OPERATOR, async_redis_client, receiver_hot_path, redis_client
from shared.settings import Settings
from shared.wire import decode_message
from tests.receiver.conftest import event_body, serving, signed_headers

pytestmark = pytest.mark.slow


@pytest.fixture
async def cluster_client(cluster_url: str) -> AsyncIterator[Redis]:
    client = async_redis_client(cluster_url, receiver_hot_path(2.0))
    yield client
    await client.aclose()


def inbox(cluster_url: str, shard: int = 0) -> list[bytes]:
    client = redis_client(cluster_url, OPERATOR)
    try:
        return list(client.lrange(keys.inbox_keys(shard).queue, 0, -1))
    finally:
        client.close()


async def test_appends_spread_over_the_shards_on_several_primaries(
    cluster_client: Redis, cluster_url: str, redis_cluster: EmbeddedCluster
) -> None:
    # Given a receiver writing 4 inbox shards on a 3-primary cluster
    sharded = ShardedInbox(cluster_client, shards=4, timeout_s=2.0)
    sharded.start()
    messages = [b"m%03d" % n for n in range(200)]
    # When 200 events are appended at once, and a second copy of each
    await asyncio.gather(*(sharded.append(m, "workos", f"event_{m.decode()}") for m in messages))
    await asyncio.gather(*(sharded.append(m + b"'", "workos", f"event_{m.decode()}") for m in messages))
    await sharded.close()
    # Then each is stored once per copy, spread over the 4 shards, which live on more than one primary
    stored = {shard: inbox(cluster_url, shard) for shard in range(4)}
    assert sorted(m for got in stored.values() for m in got) == sorted(messages + [m + b"'" for m in messages])
    assert all(len(got) > 50 for got in stored.values())
    # And both copies of an event are in one shard, in the order they were appended
    for got in stored.values():
        firsts = [m for m in got if not m.endswith(b"'")]
        assert [m for m in got if m.endswith(b"'")] == [m + b"'" for m in firsts]
        for m in firsts:
            assert got.index(m) < got.index(m + b"'")
    primaries = {redis_cluster.port_for_key(keys.inbox_keys(shard).queue) for shard in range(4)}
    assert len(primaries) > 1
    # And the width ingesters drain is recorded
    client = redis_client(cluster_url, OPERATOR)
    assert int(client.get(keys.INBOX_WIDTH) or 0) == 4
    client.close()


async def test_an_inbox_slot_migrating_under_load_costs_latency_only(
    cluster_client: Redis, cluster_url: str, redis_cluster: EmbeddedCluster
) -> None:
    # Given a writer appending steadily to inbox shard 0
    writer = InboxWriter(cluster_client, timeout_s=2.0)
    await writer.append(b"before")
    slot = key_slot(keys.INBOX.encode())
    source = redis_cluster.port_for_slot(slot)
    target = next(p.port for p in redis_cluster.primaries() if p.port != source)
    acknowledged: list[bytes] = []
    refused = 0
    # When the shard's slot is moved to another primary, key by key, while the appends go on
    mover = threading.Thread(target=redis_cluster.move_slot, args=(slot, target), kwargs={"between_steps": 0.05})
    mover.start()
    n = 0
    while mover.is_alive() or n < 200:
        message = b"m%05d" % n
        n += 1
        try:
            await writer.append(message)
            acknowledged.append(message)
        except StoreUnavailable:
            refused += 1  # the sender would retry this one
    mover.join()
    await writer.close()
    # Then the slot now lives on the target, and every acknowledged append is there, once
    assert redis_cluster.port_for_slot(slot) == target
    stored = inbox(cluster_url)
    assert stored.count(b"before") == 1
    assert [m for m in stored if m != b"before"] == acknowledged
    assert refused <= 5, refused  # redirections are followed, not answered with 503


async def test_a_primary_failing_over_costs_latency_only(
    cluster_client: Redis, cluster_url: str, redis_cluster: EmbeddedCluster
) -> None:
    # Given a writer that needs one replica to confirm each append (HOOKYARD_MIN_REPLICAS=1)
    writer = InboxWriter(cluster_client, timeout_s=1.0, min_replicas=1)
    primary = redis_cluster.port_for_key(keys.INBOX)
    acknowledged: list[bytes] = []
    refused = 0
    # When the inbox's primary is SIGKILLed mid-traffic and its replica takes over
    failover = threading.Thread(target=redis_cluster.fail_over, args=(primary,))
    n = 0
    while n < 100 or failover.is_alive():
        if n == 50:
            failover.start()
        message = b"m%05d" % n
        n += 1
        try:
            await writer.append(message)
            acknowledged.append(message)
        except StoreUnavailable:
            refused += 1
            await asyncio.sleep(0.05)  # the sender's backoff, shortened
    failover.join()
    # And once the old primary is back (as the new primary's replica), appends are accepted again
    redis_cluster.restart(primary)
    for _ in range(100):
        try:
            await writer.append(b"after")
            acknowledged.append(b"after")
            break
        except StoreUnavailable:
            await asyncio.sleep(0.1)
    await writer.close()
    # Then every acknowledged append survived the loss of the primary (a replica had each before the 200)
    stored = inbox(cluster_url)
    assert acknowledged[-1] == b"after"
    assert [m for m in stored if m in set(acknowledged)] == acknowledged
    assert refused > 0  # the outage was real: the writer refused while no primary (then no replica) had the slot


async def test_without_enough_replicas_an_append_is_refused(
    cluster_client: Redis, cluster_url: str, redis_cluster: EmbeddedCluster
) -> None:
    # Given the replica of the inbox's primary is down
    primary = redis_cluster.port_for_key(keys.INBOX)
    replica = redis_cluster.replica_of(primary)
    redis_cluster.kill(replica.port)
    writer = InboxWriter(cluster_client, timeout_s=0.5, min_replicas=1)
    # When an append needs one replica to confirm it
    with pytest.raises(StoreUnavailable, match="replicas confirmed"):
        await writer.append(b"unsafe")
    await writer.close()
    # Then it was refused (503, the sender retries) although the primary holds it: a retry is a duplicate the
    # processor drops by id, never a loss
    assert inbox(cluster_url) == [b"unsafe"]
    client = redis.Redis(port=primary)
    assert client.llen(keys.INBOX) == 1
    client.close()


async def test_the_receiver_app_on_a_cluster_stores_and_is_ready(
    cluster_url: str, redis_url: str, base_env: dict[str, str]
) -> None:
    # Given the receiver configured with a cluster store, 4 inbox shards and replicated acknowledgements
    env = {**base_env, "REDIS_URL": cluster_url, "HOOKYARD_BROKER_URL": redis_url,
           "HOOKYARD_INBOX_SHARDS": "4", "HOOKYARD_MIN_REPLICAS": "1"}  # fmt: skip
    app = create_app(Settings.from_env(env))
    async with serving(app) as client:
        # When signed events are delivered
        ids = [f"event_{n:02d}" for n in range(12)]
        for event_id in ids:
            body = event_body(event_id, "dsync.user.created")
            response = await client.post("/webhooks/workos", content=body, headers=signed_headers(body))
            # Then each is answered 200 only once stored (and replicated)
            assert response.status_code == 200, response.text
        # And readiness reports the cluster healthy, with no durability warning
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json().get("warnings", []) == []
    stored = [decode_message(m).event_id for shard in range(4) for m in inbox(cluster_url, shard)]
    assert sorted(stored) == ids


async def test_a_frozen_primary_failed_over_costs_latency_only(
    cluster_client: Redis, cluster_url: str, redis_cluster: EmbeddedCluster
) -> None:
    # Given a writer appending to inbox shard 0
    writer = InboxWriter(cluster_client, timeout_s=0.5)
    await writer.append(b"before")
    primary = redis_cluster.port_for_key(keys.INBOX)
    # When its primary freezes (SIGSTOP: connections stay open, nothing answers) and its replica takes over
    failover = threading.Thread(target=redis_cluster.fail_over, args=(primary,), kwargs={"freeze": True})
    failover.start()
    acknowledged: list[bytes] = []
    n = 0
    while failover.is_alive() or not acknowledged:
        message = b"m%05d" % n
        n += 1
        try:
            await writer.append(message)
            acknowledged.append(message)
        except StoreUnavailable:
            await asyncio.sleep(0.05)
    failover.join()
    # Then, with the frozen node still frozen, appends are accepted again (the slot map was refreshed without it)
    for n in range(20):
        await writer.append(b"after %d" % n)
    await writer.close()
    stored = inbox(cluster_url)
    assert stored[0] == b"before"
    assert [m for m in stored if m.startswith(b"after")] == [b"after %d" % n for n in range(20)]
    assert all(m in stored for m in acknowledged)
