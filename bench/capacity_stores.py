"""The two state stores the capacity part compares: one Redis server, and a loopback Redis Cluster (3 primaries with a
replica each) whose wake-ups go through a plain Redis broker, as a cluster requires. Beside them a small Redis holds
the bench handlers' counter, so no store is charged for the bench's own bookkeeping."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import redis
from redis.crc import key_slot

from processor.devtools.embedded_cluster import EmbeddedCluster
from processor.devtools.embedded_redis import EmbeddedRedis
from shared.keys import inbox_keys

__all__ = ["CLUSTER", "SINGLE", "BenchStore"]

SINGLE = "single"
CLUSTER = "cluster"


class BenchStore:
    """One store under test (`SINGLE` or `CLUSTER`), started and stopped as a whole."""

    def __init__(self, kind: str, workdir: Path, *, inbox_shards: int) -> None:
        self.kind = kind
        self.inbox_shards = inbox_shards
        self.server: EmbeddedRedis | None = None
        self.cluster: EmbeddedCluster | None = None
        self.broker: EmbeddedRedis | None = None
        if kind == SINGLE:
            self.server = EmbeddedRedis(workdir / "single")
        else:
            self.cluster = EmbeddedCluster(workdir / "cluster", primaries=3, replicas=1)
            self.broker = EmbeddedRedis(workdir / "broker")
        self.primaries: list[int] = []
        self.replicas: list[int] = []
        self.polls: Counter[int] = Counter()  # the bench's own LLEN calls, by node
        self._clients: dict[int, redis.Redis] = {}

    def start(self) -> None:
        if self.server is not None:
            self.server.start()
            self.primaries = [self.server.port]
        if self.cluster is not None and self.broker is not None:
            self.broker.start()
            self.cluster.start()
            self.primaries = sorted(node.port for node in self.cluster.primaries())
            self.replicas = sorted(set(self.cluster.nodes) - set(self.primaries))

    def stop(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        for server in (self.server, self.broker):
            if server is not None:
                server.stop()
        if self.cluster is not None:
            self.cluster.stop()

    @property
    def url(self) -> str:
        if self.cluster is not None:
            return self.cluster.url
        assert self.server is not None
        return self.server.url

    @property
    def all_ports(self) -> list[int]:
        """Every Redis node the store's processes talk to: primaries, replicas and the broker."""
        return [*self.primaries, *self.replicas, *([self.broker.port] if self.broker is not None else [])]

    @property
    def broker_port(self) -> int | None:
        return self.broker.port if self.broker is not None else None

    @property
    def env(self) -> dict[str, str]:
        """The settings every Hookyard process gets for this store."""
        env = {"REDIS_URL": self.url, "HOOKYARD_INBOX_SHARDS": str(self.inbox_shards)}
        if self.broker is not None:
            env["HOOKYARD_BROKER_URL"] = self.broker.url
        return env

    def pids(self) -> list[int]:
        servers = [self.server, self.broker, *(self.cluster.nodes.values() if self.cluster else ())]
        return [server.pid for server in servers if server is not None and server.pid is not None]

    def port_for_key(self, key: str) -> int:
        if self.cluster is None:
            return self.primaries[0]
        return self.cluster.port_for_slot(key_slot(key.encode()))

    def flush(self) -> None:
        """Empty every primary and the broker (replicas follow their primary)."""
        ports = [*self.primaries, *([self.broker_port] if self.broker_port else [])]
        for port in ports:
            client = redis.Redis(port=port)
            try:
                client.flushall()
            finally:
                client.close()
        if self.replicas:
            assert self.cluster is not None
            self.cluster.wait_healthy()

    def inbox_length(self, shards: int) -> int:
        """Messages in the first `shards` inbox lists, by LLEN on the node serving each (counted in `polls`)."""
        total = 0
        for shard in range(shards):
            key = inbox_keys(shard).queue
            port = self.port_for_key(key)
            client = self._client(port)
            total += int(client.llen(key))
            self.polls[port] += 1
        return total

    def push_inbox(self, shard: int, messages: list[bytes]) -> None:
        key = inbox_keys(shard).queue
        client = self._client(self.port_for_key(key))
        pipe = client.pipeline(transaction=False)
        for start in range(0, len(messages), 1000):
            pipe.rpush(key, *messages[start : start + 1000])
        pipe.execute()

    def _client(self, port: int) -> redis.Redis:
        if port not in self._clients:
            self._clients[port] = redis.Redis(port=port, socket_timeout=10)
        return self._clients[port]
