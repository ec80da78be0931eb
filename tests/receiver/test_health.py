"""Tests for receiver/health.py: liveness, readiness against a real Redis, and durability warnings."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis
from redis.exceptions import ResponseError

from processor.devtools.embedded_redis import EmbeddedRedis
from receiver import create_app
from receiver.health import (
    WARN_APPENDONLY_OFF,
    WARN_CONFIG_UNREADABLE,
    WARN_EVICTION,
    RedisConfigCheck,
)
from shared.settings import Settings
from tests.receiver.conftest import restore_appendonly, serving


async def test_healthz_is_200_without_redis(redis_server: EmbeddedRedis, client: httpx.AsyncClient) -> None:
    redis_server.stop()

    response = await client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ready_on_a_durable_redis(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "redis": "ok", "warnings": []}


async def test_readyz_is_503_while_redis_is_down_and_ready_again_after(
    redis_server: EmbeddedRedis, client: httpx.AsyncClient
) -> None:
    redis_server.stop()
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "redis": "unreachable", "warnings": []}

    redis_server.start()
    assert (await client.get("/readyz")).status_code == 200


@pytest.mark.usefixtures("appendonly_off")
async def test_readyz_warns_when_persistence_is_off(settings: Settings) -> None:
    async with serving(create_app(settings)) as client:
        response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["warnings"] == [WARN_APPENDONLY_OFF]


async def test_readyz_warns_about_eviction(settings: Settings, redis_client: redis.Redis) -> None:
    redis_client.config_set("maxmemory-policy", "allkeys-lru")
    try:
        async with serving(create_app(settings)) as client:
            response = await client.get("/readyz")
    finally:
        redis_client.config_set("maxmemory-policy", "noeviction")

    assert response.status_code == 200
    assert response.json()["warnings"] == [WARN_EVICTION]


async def test_readyz_serves_the_config_check_from_cache(client: httpx.AsyncClient, redis_client: redis.Redis) -> None:
    # Given an app that read the durable config at startup
    assert (await client.get("/readyz")).json()["warnings"] == []

    # When persistence is switched off within the cache period, readiness still reports the cached answer
    redis_client.config_set("appendonly", "no")
    try:
        response = await client.get("/readyz")
    finally:
        restore_appendonly(redis_client)

    assert response.json()["warnings"] == []


class _ConfigDisabled:
    """A stand-in for a managed Redis that refuses CONFIG (as ElastiCache and others do)."""

    def __init__(self) -> None:
        self.calls = 0

    async def config_get(self, name: str) -> dict[str, Any]:
        self.calls += 1
        raise ResponseError("unknown command 'CONFIG'")


class _ConfigReply:
    def __init__(self, reply: dict[Any, Any]) -> None:
        self.reply = reply
        self.calls = 0

    async def config_get(self, name: str) -> dict[Any, Any]:
        self.calls += 1
        return {k: v for k, v in self.reply.items() if k in (name, name.encode())}


async def test_unreadable_config_is_a_warning_not_unready() -> None:
    check = RedisConfigCheck()

    assert await check.warnings(_ConfigDisabled()) == [WARN_CONFIG_UNREADABLE]  # type: ignore[arg-type]


async def test_empty_config_reply_is_unreadable() -> None:
    check = RedisConfigCheck()

    assert await check.warnings(_ConfigReply({})) == [WARN_CONFIG_UNREADABLE]  # type: ignore[arg-type]


async def test_config_answers_are_cached() -> None:
    redis_stub = _ConfigReply({b"appendonly": b"no", b"maxmemory-policy": b"noeviction"})
    check = RedisConfigCheck(cache_s=60.0)

    first = await check.warnings(redis_stub)  # type: ignore[arg-type]
    second = await check.warnings(redis_stub)  # type: ignore[arg-type]

    assert first == second == [WARN_APPENDONLY_OFF]
    assert redis_stub.calls == 2  # one CONFIG GET per setting, once


async def test_expired_cache_reads_again() -> None:
    redis_stub = _ConfigReply({"appendonly": "yes", "maxmemory-policy": "volatile-lru"})
    check = RedisConfigCheck(cache_s=0.0)

    assert await check.warnings(redis_stub) == [WARN_EVICTION]  # type: ignore[arg-type]
    redis_stub.reply["maxmemory-policy"] = "noeviction"
    assert await check.warnings(redis_stub) == []  # type: ignore[arg-type]
    assert redis_stub.calls == 4


async def test_readyz_is_503_when_the_replicas_every_append_waits_for_are_missing(base_env: dict[str, str]) -> None:
    # Given a receiver that needs one replica per append, on a server that has none
    app = create_app(Settings.from_env({**base_env, "HOOKYARD_MIN_REPLICAS": "1"}))
    async with serving(app) as client:
        # When asked whether it is ready, Then it says no, and why: every append would be refused
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["redis"] == "replicas: 0 of 1 required"
