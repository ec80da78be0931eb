"""Tests for shared/redis_clients.py: each policy's timeouts reach the client, and no client retries a command."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio
import redis.cluster

from shared.errors import ConfigError
from shared.redis_clients import (
    OPERATOR,
    WORKER_LOOPS,
    ClientPolicy,
    async_redis_client,
    cluster_address,
    is_cluster,
    receiver_hot_path,
    redact_url,
    redis_client,
)

POLICIES = [receiver_hot_path(2.0), receiver_hot_path(0.25), WORKER_LOOPS, OPERATOR]
#: Short enough for a test to wait out; the behaviour under test does not depend on the length.
QUICK = ClientPolicy(name="test", socket_timeout_s=0.2, connect_timeout_s=0.2)


@pytest.fixture
def silent_redis() -> Iterator[socket.socket]:
    """A TCP listener that takes connections and never answers: a frozen Redis, as a client sees one."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        yield listener


def _connections_made(listener: socket.socket) -> int:
    # The kernel completes handshakes into the backlog without accept(): count what queued up.
    listener.setblocking(False)
    count = 0
    while True:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return count
        connection.close()
        count += 1


def _url(listener: socket.socket) -> str:
    host, port = listener.getsockname()
    return f"redis://{host}:{port}/0"


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: f"{p.name}-{p.socket_timeout_s:g}s")
def test_the_blocking_client_carries_the_policy(policy: ClientPolicy, redis_url: str) -> None:
    client = redis_client(redis_url, policy)
    try:
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == policy.socket_timeout_s
        assert kwargs["socket_connect_timeout"] == policy.connect_timeout_s
        assert kwargs["health_check_interval"] == policy.health_check_interval_s
        assert kwargs["socket_keepalive"] is policy.keepalive
        assert client.connection_pool.make_connection().retry.get_retries() == 0
    finally:
        client.close()


@pytest.mark.parametrize("policy", POLICIES, ids=lambda p: f"{p.name}-{p.socket_timeout_s:g}s")
async def test_the_asyncio_client_carries_the_policy(policy: ClientPolicy, redis_url: str) -> None:
    client = async_redis_client(redis_url, policy)
    try:
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == policy.socket_timeout_s
        assert kwargs["socket_connect_timeout"] == policy.connect_timeout_s
        assert kwargs["health_check_interval"] == policy.health_check_interval_s
        assert kwargs["socket_keepalive"] is policy.keepalive
        assert client.connection_pool.make_connection().retry.get_retries() == 0
        assert await client.ping()
    finally:
        await client.aclose()


def test_the_receiver_never_waits_to_connect_past_its_enqueue_timeout() -> None:
    assert receiver_hot_path(0.25).connect_timeout_s == 0.25
    assert receiver_hot_path(5.0).connect_timeout_s == 1.0


def test_every_fixed_policy_is_bounded() -> None:
    # A frozen Redis must surface as an error within seconds, never hang a CLI verb or a scrape.
    assert OPERATOR.socket_timeout_s <= 3.0
    assert OPERATOR.connect_timeout_s <= 3.0
    assert WORKER_LOOPS.socket_timeout_s <= 10.0


def test_a_frozen_redis_times_out_once_without_a_retry(silent_redis: socket.socket) -> None:
    client = redis_client(_url(silent_redis), QUICK)
    try:
        with pytest.raises(redis.TimeoutError):
            client.ping()
    finally:
        client.close()

    # A retry would have opened another connection after the timeout (a Retry of 2 makes 3 connections here).
    assert _connections_made(silent_redis) == 1


async def test_a_frozen_redis_times_out_once_without_a_retry_asyncio(silent_redis: socket.socket) -> None:
    client = async_redis_client(_url(silent_redis), QUICK)
    try:
        with pytest.raises(redis.TimeoutError):
            await client.ping()
    finally:
        await client.aclose()

    assert _connections_made(silent_redis) == 1


@pytest.mark.parametrize(
    ("url", "seeds", "username", "password", "tls"),
    [
        ("redis+cluster://127.0.0.1:7000", (("127.0.0.1", 7000),), None, None, False),
        ("redis+cluster://a:7000,b:7001/", (("a", 7000), ("b", 7001)), None, None, False),
        ("rediss+cluster://user:p%40ss@a:7000,b", (("a", 7000), ("b", 6379)), "user", "p@ss", True),
        ("redis+cluster://:secret@[::1]:7000", (("::1", 7000),), None, "secret", False),
    ],
)
def test_cluster_urls_name_their_seeds_and_credentials(
    url: str, seeds: tuple[tuple[str, int], ...], username: str | None, password: str | None, tls: bool
) -> None:
    address = cluster_address(url)
    assert (address.seeds, address.username, address.password, address.tls) == (seeds, username, password, tls)
    assert is_cluster(url)
    assert "secret" not in redact_url(url) and "p%40ss" not in redact_url(url)


@pytest.mark.parametrize("url", ["redis+cluster://", "redis+cluster://host:port", "redis://a:1"])
def test_malformed_cluster_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        cluster_address(url)


def test_a_cluster_client_follows_the_policy_and_does_not_retry(cluster_url: str) -> None:
    client = redis_client(cluster_url, QUICK)
    try:
        assert client.ping()
        assert isinstance(client, redis.cluster.RedisCluster)
        assert client.retry.get_retries() == 0
        node = client.get_default_node()
        kwargs = client.get_redis_connection(node).connection_pool.connection_kwargs
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (0.2, 0.2)
    finally:
        client.close()
