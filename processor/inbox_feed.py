"""The processor's one way into the receiver's inbox: append queued messages exactly as the receiver does
(`shared/scripts/inbox_append.lua` on `keys.INBOX` and `keys.INBOX_WAKE`), so what the Events API reconciler
feeds is deduped, ordered and mirrored with the webhooks as one stream.

Kept to this one function on purpose: when the inbox is sharded (HOOKYARD_INBOX_SHARDS) only it needs to learn
where a message goes.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis

from processor.store.calls import call
from shared import keys, scripts

__all__ = ["append_to_inbox"]


def append_to_inbox(client: redis.Redis, messages: Sequence[bytes]) -> None:
    """Append `messages` (encoded by `shared.wire.encode_message`) to the inbox and wake the ingester; raises
    `StoreUnavailable` when Redis did not acknowledge it."""
    if not messages:
        return
    append = client.register_script(scripts.source("inbox_append"))
    call(append, keys=[keys.INBOX, keys.INBOX_WAKE], args=list(messages))
