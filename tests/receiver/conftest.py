"""Receiver fixtures: settings on the test Redis, an app with its lifespan running, and signed deliveries."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
import redis
from starlette.applications import Starlette

from receiver import create_app
from shared.keys import INBOX
from shared.settings import Settings
from shared.signature import sign
from shared.wire import QueuedEvent, decode_message
from tests.conftest import TEST_SECRET


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def event_body(event_id: str = "event_01TEST", event_type: str = "user.created", **extra: Any) -> bytes:
    document = {"id": event_id, "event": event_type, "data": {"id": "user_01"}, **extra}
    return orjson.dumps(document)


def signed_headers(body: bytes, *, secret: str = TEST_SECRET, at_ms: int | None = None) -> dict[str, str]:
    signature = sign(body, secret.encode(), now_ms() if at_ms is None else at_ms)
    return {"WorkOS-Signature": signature, "Content-Type": "application/json"}


def inbox_events(client: redis.Redis) -> list[QueuedEvent]:
    return [decode_message(message) for message in client.lrange(INBOX, 0, -1)]


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (startup, then drain on exit) around an in-process HTTP client."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
            yield client


@pytest.fixture
def settings(base_env: dict[str, str]) -> Settings:
    return Settings.from_env(base_env)


@pytest.fixture
def app(settings: Settings) -> Starlette:
    return create_app(settings)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(app) as client:
        yield client


def restore_appendonly(client: redis.Redis, timeout_s: float = 10.0) -> None:
    """Turn AOF back on and wait for its initial rewrite: until then Redis refuses to shut down on SIGTERM."""
    client.config_set("appendonly", "yes")
    deadline = time.monotonic() + timeout_s
    while True:
        info = client.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            return
        assert time.monotonic() < deadline, "the AOF rewrite did not finish"
        time.sleep(0.01)  # polling interval, bounded by the deadline above


@pytest.fixture
def appendonly_off(redis_client: redis.Redis) -> Iterator[None]:
    """The test Redis with AOF off, as a careless production setup would have it; restored afterwards."""
    redis_client.config_set("appendonly", "no")
    yield
    restore_appendonly(redis_client)
