"""How the store talks to Redis: its scripts, registered once, and redis-py's errors translated at the boundary.

"Redis cannot do this now" (down, loading, full, a demoted primary) becomes `StoreUnavailable`, which every
caller treats as an outage to back off from; any other error from a script is a bug and propagates.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import redis
import redis.cluster
from redis.commands.core import Script

from shared import scripts
from shared.errors import StoreUnavailable

__all__ = ["ScriptBatch", "Scripts", "call"]

_OUTAGES = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.MasterDownError,
)
# The same, as an error code at the start of a reply or inside a script's error ("... @user_script: 4: -OOM ...")
# (redis-py strips the code from the errors it maps to a class, and has no class for some of them).
_OUTAGE_CODES = re.compile(r"(?:^|-)(?:MISCONF|NOREPLICAS|OOM|READONLY|LOADING|MASTERDOWN)\b")


def call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one Redis call (or a pipeline's `execute`), translating outages into `StoreUnavailable`."""
    try:
        return fn(*args, **kwargs)
    except _OUTAGES as exc:
        raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
    except redis.ResponseError as exc:
        if _OUTAGE_CODES.search(str(exc)):
            raise StoreUnavailable(f"redis: {exc}") from exc
        raise
    except redis.exceptions.ClusterError as exc:
        # A cluster whose slot map is being rebuilt (a failover, a node gone): the same as a server away.
        raise StoreUnavailable(f"redis cluster: {type(exc).__name__}: {exc}") from exc


def _reraise(exc: Exception) -> Any:
    raise exc


class Scripts:
    """Every script of `shared.scripts`, registered on one client."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._scripts: dict[str, Script] = {
            name: client.register_script(scripts.source(name)) for name in scripts.PAIR_SCRIPTS + scripts.PLAIN_SCRIPTS
        }

    def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return call(self._scripts[name], keys=keys, args=args)

    def batch(self) -> ScriptBatch:
        """Script calls to send in one round trip (per node, on a cluster)."""
        return ScriptBatch(self)


class ScriptBatch:
    """Script calls sent in one round trip (per node, on a cluster).

    A cluster pipeline cannot carry scripts, so on a cluster the calls are grouped by the node that serves their
    slot and sent as one plain pipeline per node. A call that met MOVED, ASK or TRYAGAIN (the slot moved or is
    moving), or NOSCRIPT, did not run: it is run again on its own through the cluster client, which follows the
    redirection (and loads the script). Every other call in the batch ran once.
    """

    def __init__(self, scripts: Scripts) -> None:
        self._scripts = scripts
        self._calls: list[tuple[str, list[str], list[Any]]] = []

    def add(self, name: str, keys: list[str], args: list[Any]) -> None:
        self._calls.append((name, keys, args))

    def run(self) -> list[Any]:
        """Every call's reply, in the order added; raises as `call` does for the first call that failed."""
        client = self._scripts.client
        if isinstance(client, redis.cluster.RedisCluster):
            replies = self._run_per_node(client)
        else:
            pipe = client.pipeline(transaction=False)
            for name, keys, args in self._calls:
                self._scripts._scripts[name](keys=keys, args=args, client=pipe)
            replies = list(call(pipe.execute, raise_on_error=False))
        for index, reply in enumerate(replies):
            if isinstance(reply, _NOT_RUN):
                replies[index] = self._scripts.run(*self._calls[index])
            elif isinstance(reply, Exception):
                call(_reraise, reply)
        return replies

    def _run_per_node(self, cluster: redis.cluster.RedisCluster) -> list[Any]:
        by_node: dict[str, tuple[Any, list[int]]] = {}
        for index, (_, keys, _) in enumerate(self._calls):
            node = cluster.get_node_from_key(keys[0])  # type: ignore[no-untyped-call]
            by_node.setdefault(node.name, (node, []))[1].append(index)
        replies: list[Any] = [None] * len(self._calls)
        for node, indexes in by_node.values():
            pipe = cluster.get_redis_connection(node).pipeline(transaction=False)
            for index in indexes:
                name, keys, args = self._calls[index]
                self._scripts._scripts[name](keys=keys, args=args, client=pipe)
            try:
                results = call(pipe.execute, raise_on_error=False)
            except StoreUnavailable:
                # The node may be gone for good (a failover): the next command through the cluster client must
                # start from a fresh slot map.
                with contextlib.suppress(redis.RedisError):
                    cluster.nodes_manager.initialize()
                raise
            for index, result in zip(indexes, results, strict=True):
                replies[index] = result
        return replies


#: Replies that mean the script did not run, so running it again (through the cluster client) is safe.
_NOT_RUN = (
    redis.exceptions.NoScriptError,
    redis.exceptions.AskError,  # MovedError is an AskError
    redis.exceptions.TryAgainError,
)
