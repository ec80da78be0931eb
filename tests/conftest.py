"""Fixtures shared by the whole suite: a real redis-server (the embedded binary) and, for the wake-up broker
tests, a private RabbitMQ node (Debian's rabbitmq-server, which `make tools` installs), each started once per
session."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pika
import pytest
import redis

from processor.devtools.embedded_cluster import EmbeddedCluster
from processor.devtools.embedded_redis import EmbeddedRedis
from processor.devtools.rabbitmq import PrivateRabbitmq, rabbitmq_scripts
from shared import keys
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
    empty_server(redis_server)
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCluster]:
    """A Redis Cluster of 3 primaries with a replica each, started once (on first use) for the session."""
    cluster = EmbeddedCluster(tmp_path_factory.mktemp("cluster"), primaries=3, replicas=1)
    cluster.start()
    yield cluster
    cluster.stop()


def empty_cluster(cluster: EmbeddedCluster) -> None:
    """Every node up (a test may have killed or frozen one), settled, and every primary emptied."""
    cluster.heal()
    for primary in cluster.primaries():
        client = redis.Redis(port=primary.port)
        client.flushall()
        client.close()


def empty_server(server: EmbeddedRedis) -> None:
    if not server.running:
        server.start()
    client = redis.Redis.from_url(server.url)
    client.flushall()
    client.close()


@pytest.fixture
def cluster_url(redis_cluster: EmbeddedCluster) -> str:
    """The session's cluster, whole and empty."""
    empty_cluster(redis_cluster)
    return redis_cluster.url


@dataclass(frozen=True)
class StoreUnderTest:
    """A state store a guarantee is proven on: one server or a cluster, and how to empty it between examples."""

    kind: str
    url: str
    empty: Callable[[], None]


@pytest.fixture(params=["server", "cluster"])
def store(request: pytest.FixtureRequest) -> StoreUnderTest:
    """The state store, once as one server and once as a cluster (parametrised, never copied), emptied."""
    if request.param == "server":
        server: EmbeddedRedis = request.getfixturevalue("redis_server")
        target = StoreUnderTest("server", server.url, lambda: empty_server(server))
    else:
        cluster: EmbeddedCluster = request.getfixturevalue("redis_cluster")
        target = StoreUnderTest("cluster", cluster.url, lambda: empty_cluster(cluster))
    target.empty()
    return target


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def base_env(redis_url: str) -> dict[str, str]:
    """An environment for `Settings.from_env` pointing at the test Redis with a known secret."""
    return {"REDIS_URL": redis_url, "WORKOS_WEBHOOK_SECRET": TEST_SECRET}


@pytest.fixture(scope="session")
def rabbitmq_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRabbitmq]:
    """A RabbitMQ node of the suite's own (never the system's on 5672); it takes seconds to start, so once."""
    if rabbitmq_scripts() is None:
        problem = "rabbitmq-server is not installed: install Debian's `rabbitmq-server` (`make tools` does as root)"
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"{problem}; CI runs every broker test", pytrace=False)
        pytest.skip(f"!!! BROKER TEST NOT RUN: {problem} !!!")
    node = PrivateRabbitmq(tmp_path_factory.mktemp("rabbitmq"))
    node.start()
    yield node
    node.stop()


@pytest.fixture
def rabbitmq_url(rabbitmq_node: PrivateRabbitmq) -> str:
    """The session's RabbitMQ with the wake-up queues deleted (restarted first if a test stopped it)."""
    if not rabbitmq_node.running:
        rabbitmq_node.start()
    rabbitmq_node.resume()  # in case a failed test left it paused
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_node.url))
    channel = connection.channel()
    for queue in (keys.WAKE_QUEUE_NAME, f"{keys.WAKE_QUEUE_NAME}.DQ", f"{keys.WAKE_QUEUE_NAME}.XQ"):
        channel.queue_delete(queue)
    connection.close()
    return rabbitmq_node.url
