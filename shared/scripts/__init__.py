"""Every atomic multi-key step on Redis, as a Lua script beside the key templates (`shared.keys`).

Pair scripts (those that act on one (handler, source, ordering key) of a shard) are prefixed with `prelude.lua`,
which names their keys and parses one fixed argument header (`PAIR_HEADER`); every other script stands alone.
Each script names the keys it touches in its `KEYS`, all under one hash tag, so it runs on Redis Cluster too.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["PAIR_HEADER", "PAIR_SCRIPTS", "PLAIN_SCRIPTS", "source"]

#: Names of the header every pair script's ARGV starts with, in order (parsed into `A` by prelude.lua).
PAIR_HEADER = ("now", "window", "grace", "idle_ttl", "lease")
PAIR_SCRIPTS = ("admit", "claim", "complete", "fail", "release", "renew", "replay", "resend")
PLAIN_SCRIPTS = (
    "admit_events",
    "heartbeat",
    "inbox_ack",
    "inbox_append",
    "inbox_lease",
    "inbox_width",
    "keep_archive",
    "sweep",
    "trim_letters",
)


def _read(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.lua").read_text()


@cache
def source(name: str) -> str:
    """The full text of a script, with the prelude in front of a pair script."""
    if name in PAIR_SCRIPTS:
        return _read("prelude") + "\n" + _read(name)
    if name in PLAIN_SCRIPTS:
        return _read(name)
    raise KeyError(f"no script named {name!r}")
