"""The inbox writer's connection to the node that holds its inbox shard, and its one command: append a batch
(shared/scripts/inbox_append.lua), then, when asked, WAIT until that many replicas hold it.

The writer sends one batch at a time, with a command it packed itself (hiredis), skipping redis-py's per-command
layers (pool checkout and return, retry wrapper, observability hooks, the Python packer): that halves the receiver's
CPU per batch written. The append and its WAIT go out together on one connection (WAIT counts the replicas that
acknowledged that connection's writes) and cost one round trip.

On one server the writer keeps one pooled connection for its life. On a cluster it asks the client's slot map for
the shard's primary each time, and follows what the cluster answers a script that did not run: MOVED (the slot
moved: send to the node named, and refresh the map), ASK (the slot is migrating: ASKING on the target, then the
script) and TRYAGAIN (the slot's keys are split mid-migration: a moment later). A node that fails, hangs or
refuses makes the request a 503 and refreshes the map in the background (never inside a request's deadline: a
frozen seed node must not stall every request), trying that node last. A command that fails or is cancelled leaves
its connection disconnected, so the next one starts afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Sequence
from typing import Any, Final

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import (
    AskError,
    MovedError,
    NoScriptError,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)

from shared import scripts
from shared.errors import StoreUnavailable
from shared.keys import inbox_keys

__all__ = ["InboxConnection", "NotEnoughReplicas"]

#: Redirections followed for one batch before it is given up (the request then answers 503 and is retried).
_MAX_REDIRECTS: Final = 5
_TRY_AGAIN_S: Final = 0.02


class NotEnoughReplicas(StoreUnavailable):
    """The append landed on the primary, but fewer replicas than required confirmed it in time."""


class InboxConnection:
    """Appends to one inbox shard through `redis` (a client of one server or of a cluster)."""

    def __init__(self, redis: Redis, shard: int = 0, *, min_replicas: int = 0) -> None:
        self._redis = redis
        self._cluster: RedisCluster | None = redis if isinstance(redis, RedisCluster) else None
        self._connection: AbstractConnection | None = None
        shard_keys = inbox_keys(shard)
        self._keys: Final = (shard_keys.queue.encode(), shard_keys.wake.encode())
        self._min_replicas = min_replicas
        self._source = scripts.source("inbox_append").encode()
        self._sha = hashlib.sha1(self._source, usedforsecurity=False).hexdigest().encode()  # Redis names it so
        #: The slot map refresh under way after a failure (cluster only).
        self._refreshing: asyncio.Task[None] | None = None

    async def append(self, messages: Sequence[bytes], answer_by: float = 0.0) -> None:
        """Append `messages` to the shard and leave the wake hint; returns once Redis (and, with `min_replicas`,
        that many replicas, waited for until `answer_by` on the loop's clock) has them.

        Raises what redis-py raises for the link (`ConnectionError`, `TimeoutError`) and for a refusal (out of
        memory, a read-only replica), or `NotEnoughReplicas`.
        """
        if self._cluster is None:
            await self._append_to_server(messages, answer_by)
        else:
            await self._append_to_cluster(self._cluster, messages, answer_by)

    async def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing
        connection, self._connection = self._connection, None
        if connection is not None and self._cluster is None:
            await self._redis.connection_pool.release(connection)

    async def _append_to_server(self, messages: Sequence[bytes], answer_by: float) -> None:
        connection = self._connection
        if connection is None:
            pool = self._redis.connection_pool
            connection = self._connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await self._send(connection, b"EVALSHA", messages, answer_by)
        except NoScriptError:
            # Redis restarted or its scripts were flushed, so nothing ran: EVAL runs the script and caches it again.
            await self._send(connection, b"EVAL", messages, answer_by)

    async def _append_to_cluster(self, cluster: RedisCluster, messages: Sequence[bytes], answer_by: float) -> None:
        await cluster.initialize()  # a no-op once the slot map is known
        node = self._primary(cluster)
        asking = False
        command = b"EVALSHA"
        redirects = 0
        while redirects < _MAX_REDIRECTS:
            try:
                await self._send_to_node(node, command, messages, answer_by, asking=asking)
                return
            except NoScriptError:
                command = b"EVAL"  # a node restarted or just promoted: nothing ran
                redirects += 1
            except AskError as exc:
                # MOVED (the slot has a new owner) or ASK (it is migrating and our keys are on the target already):
                # nothing ran; the reply names the node to send to.
                moved = isinstance(exc, MovedError)
                if moved:
                    self._refresh_in_background(cluster, None)
                target = cluster.get_node(host=exc.host, port=exc.port)
                if target is None:
                    self._refresh_in_background(cluster, None)
                    raise StoreUnavailable("the inbox shard's slot moved to a node not yet known") from exc
                node, asking = target, not moved
                redirects += 1
            except TryAgainError:
                # The slot is migrating and our keys are split between its two nodes (or not yet on either): a
                # moment later they are on one. Worth waiting for while the request can still be answered 200.
                if asyncio.get_running_loop().time() + _TRY_AGAIN_S >= answer_by:
                    raise StoreUnavailable("the inbox shard's slot is mid-migration; try again") from None
                await asyncio.sleep(_TRY_AGAIN_S)
            except BaseException:
                # Down, frozen (a timeout, a cancelled wait) or refusing: the cluster may be failing it over. The
                # slot map is refreshed in the background, outside any request's deadline, and tries this node last.
                self._refresh_in_background(cluster, node.name)
                raise
        raise StoreUnavailable("the inbox shard's slot kept moving; try again")

    def _refresh_in_background(self, cluster: RedisCluster, failed_node: str | None) -> None:
        if self._refreshing is not None and not self._refreshing.done():
            return
        self._refreshing = asyncio.get_running_loop().create_task(self._refresh(cluster, failed_node))

    @staticmethod
    async def _refresh(cluster: RedisCluster, failed_node: str | None) -> None:
        with contextlib.suppress(RedisError, OSError, asyncio.TimeoutError):
            await cluster.nodes_manager.initialize(last_failed_node_name=failed_node)

    def _primary(self, cluster: RedisCluster) -> ClusterNode:
        try:
            node = cluster.get_node_from_key(self._keys[0].decode())
        except SlotNotCoveredError:
            node = None  # mid-failover, the slot map may lack the slot for a moment
        if node is None:
            self._refresh_in_background(cluster, None)
            raise StoreUnavailable("no primary serves the inbox shard's slot now")
        return node

    async def _send_to_node(
        self, node: ClusterNode, command: bytes, messages: Sequence[bytes], answer_by: float, *, asking: bool
    ) -> None:
        connection = node.acquire_connection()
        try:
            await self._send(connection, command, messages, answer_by, asking=asking)
        except BaseException:
            await connection.disconnect()
            raise
        finally:
            node.release(connection)

    async def _send(
        self,
        connection: AbstractConnection,
        command: bytes,
        messages: Sequence[bytes],
        answer_by: float,
        *,
        asking: bool = False,
    ) -> None:
        script = self._sha if command == b"EVALSHA" else self._source
        packed: list[Any] = []
        if asking:
            packed.append(hiredis.pack_command((b"ASKING",)))
        # hiredis's stub declares a 1-tuple; the function packs a tuple of any length.
        packed.append(hiredis.pack_command((command, script, len(self._keys), *self._keys, *messages)))  # type: ignore[arg-type]
        waiting = self._min_replicas > 0
        if waiting:
            # Computed at the last moment: refreshing a cluster's slot map may have used some of the time.
            wait_ms = max(1, int((answer_by - asyncio.get_running_loop().time()) * 1000))
            packed.append(hiredis.pack_command((b"WAIT", self._min_replicas, wait_ms)))  # type: ignore[arg-type]
        await connection.send_packed_command(b"".join(packed))
        replies: list[Any] = []
        for _ in packed:
            try:
                replies.append(await connection.read_response())
            except ResponseError as exc:
                replies.append(exc)  # every reply is read, so the connection stays in step
        if asking:
            replies.pop(0)
        appended = replies[0]
        if isinstance(appended, Exception):
            raise appended
        if waiting:
            confirmed = replies[1] if isinstance(replies[1], int) else 0
            if confirmed < self._min_replicas:
                raise NotEnoughReplicas(
                    f"{confirmed} of {self._min_replicas} replicas confirmed the write within {wait_ms} ms"
                )
