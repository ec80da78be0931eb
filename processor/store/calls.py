"""How the store talks to Redis: its scripts, registered once, and redis-py's errors translated at the boundary.

"Redis cannot do this now" (down, loading, full, a demoted primary) becomes `StoreUnavailable`, which every
caller treats as an outage to back off from; any other error from a script is a bug and propagates.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import redis
from redis.commands.core import Script

from shared import scripts
from shared.errors import StoreUnavailable

if TYPE_CHECKING:
    from processor.store.batch import ScriptBatch

__all__ = ["Scripts", "call", "reraise"]

_OUTAGES = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.MasterDownError,
    # A cluster that lost a primary and has not promoted its replica yet, redirections that did not settle (redis-py's
    # "TTL exhausted" mid-migration), or a slot map that does not cover a key for the moment: the same as a server
    # away. (ClusterError covers CLUSTERDOWN too.)
    redis.exceptions.ClusterError,
    redis.exceptions.SlotNotCoveredError,
)
# The same, as an error code at the start of a reply or inside a script's error ("... @user_script: 4: -OOM ...")
# (redis-py strips the code from the errors it maps to a class, and has no class for some of them).
_OUTAGE_CODES = re.compile(r"(?:^|-)(?:MISCONF|NOREPLICAS|OOM|READONLY|LOADING|MASTERDOWN|CLUSTERDOWN)\b")


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


def _raise(exc: Exception) -> Any:
    raise exc


def reraise(exc: Exception) -> Any:
    """Raise an error a pipeline returned in place, translated as `call` translates."""
    return call(_raise, exc)


class Scripts:
    """Every script of `shared.scripts`, registered on one client."""

    def __init__(self, client: redis.Redis, *, min_replicas: int = 0, replica_wait_ms: int = 1000) -> None:
        self.client = client
        #: Replicas that must confirm a `replicated` call before it returns (HOOKYARD_MIN_REPLICAS), and how long
        #: to wait for them.
        self.min_replicas = min_replicas
        self.replica_wait_ms = replica_wait_ms
        self.scripts: dict[str, Script] = {
            name: client.register_script(scripts.source(name)) for name in scripts.PAIR_SCRIPTS + scripts.PLAIN_SCRIPTS
        }

    def run(self, name: str, keys: list[str], args: list[Any], *, replicated: bool = False) -> Any:
        """Run one script; `replicated`: return only once `min_replicas` replicas hold its writes."""
        if replicated and self.min_replicas:
            calls = self.batch()
            calls.add(name, keys, args)
            return calls.run(replicated=True)[0]
        return call(self.scripts[name], keys=keys, args=args)

    def batch(self) -> ScriptBatch:
        """Script calls to send in one round trip (per node, on a cluster)."""
        from processor.store.batch import ScriptBatch  # here: the batch module builds on this one

        return ScriptBatch(self)
