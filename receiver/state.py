"""What the receiver's apps share for the life of the process: metrics, the Redis client and the inbox writer.

The webhook app's lifespan opens and closes it; the ops app (when served on its own port) only reads it.
"""

from __future__ import annotations

from redis.asyncio import Redis

from receiver.inbox import InboxWriter
from receiver.inbox_shards import ShardedInbox
from receiver.metrics import ReceiverMetrics
from shared.redis_clients import async_redis_client, receiver_hot_path
from shared.settings import Settings

__all__ = ["ReceiverState"]


class ReceiverState:
    """Shared state of one receiver; `redis` and `inbox` exist between `open()` and `close()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics = ReceiverMetrics(settings.sources)
        self.redis: Redis | None = None
        self.inbox: InboxWriter | ShardedInbox | None = None

    async def open(self) -> None:
        """Create the client and the writer; connects lazily, so a Redis that is down now only delays 200s."""
        self.redis = async_redis_client(self.settings.redis_url, receiver_hot_path(self.settings.enqueue_timeout_s))
        settings = self.settings
        if settings.inbox_shards == 1:
            self.inbox = InboxWriter(
                self.redis,
                timeout_s=settings.enqueue_timeout_s,
                min_replicas=settings.min_replicas,
                metrics=self.metrics,
            )
        else:
            sharded = ShardedInbox(
                self.redis,
                shards=settings.inbox_shards,
                timeout_s=settings.enqueue_timeout_s,
                min_replicas=settings.min_replicas,
                metrics=self.metrics,
            )
            sharded.start()
            self.inbox = sharded

    async def close(self) -> None:
        """Settle every pending append, then close the client."""
        inbox, self.inbox = self.inbox, None
        redis, self.redis = self.redis, None
        if inbox is not None:
            await inbox.close()
        if redis is not None:
            await redis.aclose()
