"""The receiver's Redis client: timeouts on every socket operation and no automatic command retries.

A retried RPUSH whose first reply was lost would store an event twice, and retries with backoff would stall a
request past its enqueue deadline; the sender retries instead, and the processor dedupes by event id.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from shared.settings import Settings

__all__ = ["CONNECT_TIMEOUT_S", "create_redis"]

#: Connecting is a local round trip; a Redis that cannot accept a connection in a second is down for us.
CONNECT_TIMEOUT_S = 1.0


def create_redis(settings: Settings) -> Redis:
    """A client for `settings.redis_url`; it connects lazily, on first use."""
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.enqueue_timeout_s,
        socket_connect_timeout=min(CONNECT_TIMEOUT_S, settings.enqueue_timeout_s),
        socket_keepalive=True,
        retry=Retry(NoBackoff(), 0),
    )
