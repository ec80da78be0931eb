"""Fixtures shared by the whole suite: a real redis-server (the embedded binary), started once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from processor.devtools.embedded_redis import EmbeddedRedis
from tests.fixtures import WORKOS_SAMPLES

# The WorkOS mirror's database backends (SQLite, and PostgreSQL from a wheel, started only when a test asks).
pytest_plugins = ["tests.mirror.backends"]

TEST_SECRET = "whsec_test_0123456789abcdef"
SAMPLES = WORKOS_SAMPLES


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """The session's Redis, emptied before each test (restarted first if a test stopped it)."""
    if not redis_server.running:
        redis_server.start()
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def base_env(redis_url: str) -> dict[str, str]:
    """An environment for `Settings.from_env` pointing at the test Redis with a known secret."""
    return {"REDIS_URL": redis_url, "WORKOS_WEBHOOK_SECRET": TEST_SECRET}
