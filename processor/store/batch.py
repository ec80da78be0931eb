"""Script calls sent together: one pipeline on one server, one pipeline per node on a cluster.

A cluster pipeline cannot carry scripts, so on a cluster the calls are grouped by the node that serves their slot
(the client's slot map) and each group goes out as a plain pipeline to that node. A call answered MOVED, ASK or
TRYAGAIN (its slot moved or is moving) or NOSCRIPT did not run: such calls are sent again, after the slot map is
refreshed or a moment later, a bounded number of times. Every other call ran exactly once.

A `replicated` batch ends each pipeline with WAIT on the same connection, so it returns only once the store's
`min_replicas` replicas hold every write it made (HOOKYARD_MIN_REPLICAS): what the workers do next — trim the
inbox, call a handler — never rests on a write a failover could still take back.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Final

import redis
import redis.cluster

from processor.store.calls import Scripts, call, reraise
from shared.errors import StoreUnavailable

__all__ = ["NotReplicated", "ScriptBatch"]

#: Replies that mean the script did not run, so sending it again is safe.
_NOT_RUN: Final = (
    redis.exceptions.NoScriptError,
    redis.exceptions.AskError,  # MovedError is an AskError
    redis.exceptions.TryAgainError,
)
#: How many times calls that did not run are sent again, and the pause between (a slot's migration is short).
_ROUNDS: Final = 50
_PAUSE_S: Final = 0.02


class NotReplicated(StoreUnavailable):
    """The calls ran on their primary, but fewer replicas than required confirmed them in time: what they did must
    not be acted on (a failover could take it back). `replies` are what the calls answered, so that a caller can
    undo what it must not leave behind (a claim nobody will run)."""

    def __init__(self, message: str, replies: list[Any]) -> None:
        super().__init__(message)
        self.replies = replies


class ScriptBatch:
    def __init__(self, scripts: Scripts) -> None:
        self._scripts = scripts
        self._calls: list[tuple[str, list[str], list[Any]]] = []

    def add(self, name: str, keys: list[str], args: list[Any]) -> None:
        self._calls.append((name, keys, args))

    def run(self, *, replicated: bool = False) -> list[Any]:
        """Every call's reply, in the order added; raises as `call` does for the first call that failed."""
        wait = self._scripts.min_replicas if replicated else 0
        replies: list[Any] = [None] * len(self._calls)
        pending = list(range(len(self._calls)))
        for _ in range(_ROUNDS):
            again: list[int] = []
            moved = False
            for index, reply in self._send(pending, wait).items():
                if isinstance(reply, _NOT_RUN):
                    again.append(index)
                    moved |= isinstance(reply, redis.exceptions.MovedError)
                elif isinstance(reply, Exception):
                    reraise(reply)
                else:
                    replies[index] = reply
            if not again:
                return replies
            pending = again
            if moved:
                self._refresh_slot_map()
            else:
                time.sleep(_PAUSE_S)  # a slot mid-migration: its keys settle on one node in a moment
        raise StoreUnavailable("redis cluster: slots kept moving; try again")

    def _send(self, indexes: list[int], wait: int) -> dict[int, Any]:
        client = self._scripts.client
        if not isinstance(client, redis.cluster.RedisCluster):
            return self._pipeline(client, indexes, wait)
        by_node: dict[str, tuple[Any, list[int]]] = {}
        for index in indexes:
            node = client.get_node_from_key(self._calls[index][1][0])
            by_node.setdefault(node.name, (node, []))[1].append(index)
        replies: dict[int, Any] = {}
        for node, group in by_node.values():
            try:
                replies |= self._pipeline(client.get_redis_connection(node), group, wait)
            except StoreUnavailable:
                # The node may be gone for good (a failover): start the next call from a fresh slot map, asking
                # that node last (a frozen one would hold the refresh for a whole socket timeout).
                self._refresh_slot_map(failed_node=node.name)
                raise
        return replies

    def _pipeline(self, client: redis.Redis, indexes: list[int], wait: int) -> dict[int, Any]:
        pipe = client.pipeline(transaction=False)
        for index in indexes:
            name, keys, args = self._calls[index]
            self._scripts.scripts[name](keys=keys, args=args, client=pipe)
        if wait:
            pipe.execute_command("WAIT", wait, self._scripts.replica_wait_ms)  # type: ignore[no-untyped-call]
        results = list(call(pipe.execute, raise_on_error=False))
        if wait:
            confirmed = results.pop()
            if not isinstance(confirmed, int) or confirmed < wait:
                raise NotReplicated(
                    f"redis: {confirmed if isinstance(confirmed, int) else 0} of {wait} replicas confirmed the writes "
                    f"within {self._scripts.replica_wait_ms} ms",
                    results,
                )
        return dict(zip(indexes, results, strict=True))

    def _refresh_slot_map(self, failed_node: str | None = None) -> None:
        client = self._scripts.client
        if isinstance(client, redis.cluster.RedisCluster):
            if failed_node is not None:
                client.nodes_manager.move_node_to_end_of_cached_nodes(failed_node)
            with contextlib.suppress(redis.RedisError):
                client.nodes_manager.initialize(last_failed_node_name=failed_node)
