"""How the store talks to Redis: its scripts, registered once, and redis-py's errors translated at the boundary.

"Redis cannot do this now" (down, loading, full, a demoted primary) becomes `StoreUnavailable`, which every
caller treats as an outage to back off from; any other error from a script is a bug and propagates.
"""

from __future__ import annotations

import re
from typing import Any

import redis
from redis.commands.core import Script

from shared import scripts
from shared.errors import StoreUnavailable

__all__ = ["Scripts", "call"]

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


class Scripts:
    """Every script of `shared.scripts`, registered on one client."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._scripts: dict[str, Script] = {
            name: client.register_script(scripts.source(name)) for name in scripts.PAIR_SCRIPTS + scripts.PLAIN_SCRIPTS
        }

    def run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        return call(self._scripts[name], keys=keys, args=args)

    def queue(self, pipe: redis.client.Pipeline, name: str, keys: list[str], args: list[Any]) -> None:
        """Add a script call to a pipeline (run with `call(pipe.execute)`)."""
        self._scripts[name](keys=keys, args=args, client=pipe)
