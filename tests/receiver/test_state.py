"""Tests for receiver/state.py: the Redis client it opens never retries behind our back and times out in time."""

from __future__ import annotations

from receiver.state import ReceiverState
from shared.settings import Settings


async def test_the_client_never_retries_and_answers_within_the_enqueue_timeout(settings: Settings) -> None:
    state = ReceiverState(settings)
    await state.open()
    try:
        assert state.redis is not None
        connection = state.redis.connection_pool.make_connection()
        assert connection.retry.get_retries() == 0
        kwargs = state.redis.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == settings.enqueue_timeout_s
        assert kwargs["socket_connect_timeout"] <= settings.enqueue_timeout_s
    finally:
        await state.close()
