"""processor/inbox_feed.py: Events API copies land in the inbox shard the receiver would pick for the same event."""

from __future__ import annotations

import redis

from processor.inbox_feed import append_to_inbox
from shared import keys
from shared.redis_clients import WORKER_LOOPS, redis_client
from shared.wire import QueuedEvent, decode_message


def copy(event_id: str) -> QueuedEvent:
    return QueuedEvent("workos", event_id, "dsync.user.created", 1, 2, b"{}", channel="events_api")


def test_copies_go_to_the_receivers_shard_for_their_event(redis_url: str, redis_client: redis.Redis) -> None:
    # Given receivers that write 4 inbox shards
    redis_client.set(keys.INBOX_WIDTH, 4)
    client = redis_client_for(redis_url)
    # When the reconciler feeds twenty copies
    ids = [f"event_{n:02d}" for n in range(20)]
    append_to_inbox(client, [copy(event_id) for event_id in ids])
    client.close()
    # Then each is in the shard a webhook of the same event goes to, and every shard got some
    for shard in range(4):
        stored = [decode_message(m).event_id for m in redis_client.lrange(keys.inbox_keys(shard).queue, 0, -1)]
        assert stored == [e for e in ids if keys.inbox_shard("workos", e, 4) == shard]
        assert stored
        assert redis_client.llen(keys.inbox_keys(shard).wake) == 1


def test_without_a_recorded_width_everything_goes_to_the_single_inbox(
    redis_url: str, redis_client: redis.Redis
) -> None:
    client = redis_client_for(redis_url)
    append_to_inbox(client, [copy("event_a"), copy("event_b")])
    client.close()
    assert redis_client.llen(keys.INBOX) == 2


def redis_client_for(url: str) -> redis.Redis:
    return redis_client(url, WORKER_LOOPS)
