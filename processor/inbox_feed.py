"""The processor's one way into the receiver's inbox: append queued events exactly as the receiver does
(`shared/scripts/inbox_append.lua` on the inbox shard the receiver would pick), so what the Events API reconciler
feeds is deduped, ordered and mirrored with the webhooks as one stream.

The shard is the receiver's choice for the same event (`keys.inbox_shard` over the width the receivers record),
so an API copy and its webhook land in one list, in the order they arrived.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from processor.store.calls import call
from shared import keys, scripts
from shared.wire import QueuedEvent, encode_message

__all__ = ["append_to_inbox"]


def append_to_inbox(client: redis.Redis, events: Sequence[QueuedEvent]) -> None:
    """Append `events` to the inbox and wake the ingesters; raises `StoreUnavailable` when Redis did not
    acknowledge it."""
    if not events:
        return
    width = max(1, int(call(client.get, keys.INBOX_WIDTH) or 1))
    by_shard: dict[int, list[bytes]] = {}
    for event in events:
        shard = keys.inbox_shard(event.source, event.event_id, width)
        by_shard.setdefault(shard, []).append(encode_message(event))
    append = client.register_script(scripts.source("inbox_append"))
    for shard, messages in by_shard.items():
        shard_keys = keys.inbox_keys(shard)
        call(append, keys=[shard_keys.queue, shard_keys.wake], args=messages)
