"""Tests for receiver/redis_client.py: a failed command is never retried behind our back."""

from __future__ import annotations

from receiver.redis_client import create_redis
from shared.settings import Settings


async def test_the_client_never_retries_and_times_out(settings: Settings) -> None:
    client = create_redis(settings)
    try:
        connection = client.connection_pool.make_connection()
        assert connection.retry.get_retries() == 0
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == settings.enqueue_timeout_s
        assert kwargs["socket_connect_timeout"] <= settings.enqueue_timeout_s
    finally:
        await client.aclose()
