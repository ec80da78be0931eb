"""How one process's ingesters share the inbox shards with every other ingesting process.

Each inbox shard has its own lease; a process runs one ingest thread per shard, and a thread competes for its
shard's lease only while the process holds fewer than its fair share: the shard count divided by the live
ingesters of its kind, rounded up. Dedicated ingester processes share the shards among themselves; the workers'
stand-by ingesters take part only while no dedicated ingester is alive. A process over its share (another
ingester arrived) gives a lease up after its current batch, and the newcomer takes it.
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Callable

from processor.store.inbox import Inbox

__all__ = ["DEDICATED", "STANDBY", "IngestShare"]

DEDICATED = "dedicated"
STANDBY = "standby"

#: How often a process refreshes the roll of ingesters and the inbox width (and says it is alive).
_REFRESH_S = 1.0


class IngestShare:
    """The shards this process holds, and how many it may hold."""

    def __init__(
        self,
        inbox: Inbox,
        role: str,
        shards: int,
        clock_ms: Callable[[], int],
        lease_ms: int,
        *,
        name: str | None = None,
    ) -> None:
        self.inbox = inbox
        self.role = role
        self.member = f"{role}:{name or f'{socket.gethostname()}:{os.getpid()}'}"
        self.configured = shards
        self.clock_ms = clock_ms
        self.ttl_ms = max(lease_ms, 3000)
        self._lock = threading.Lock()
        self._held: set[int] = set()
        self._share = shards if role == DEDICATED else 0
        self._width = shards
        self._refreshed_at = -math.inf

    @property
    def width(self) -> int:
        """How many inbox shards exist: this process's setting or the widest any receiver wrote, if more."""
        return self._width

    def refresh(self, *, now: bool = False) -> None:
        """Re-read the roll of ingesters and the width, at most once a second unless `now` (raises
        `StoreUnavailable`)."""
        with self._lock:
            if not now and time.monotonic() - self._refreshed_at < _REFRESH_S:
                return
            self._refreshed_at = time.monotonic()
        live = self.inbox.announce(self.member, self.clock_ms(), self.ttl_ms)
        width = max(self.configured, self.inbox.width())
        dedicated = sum(1 for m in live if m.startswith(DEDICATED + ":"))
        if self.role == DEDICATED:
            share = math.ceil(width / max(1, dedicated))
        elif dedicated:
            share = 0  # a dedicated ingester is alive: stand by
        else:
            share = math.ceil(width / max(1, sum(1 for m in live if m.startswith(STANDBY + ":"))))
        with self._lock:
            self._width, self._share = width, share

    def may_try(self, shard: int) -> bool:
        """Whether the thread of `shard` should compete for its lease now."""
        with self._lock:
            return shard in self._held or len(self._held) < self._share

    def over_share(self, shard: int) -> bool:
        """True when this process holds more shards than its share and `shard` is one to give up."""
        with self._lock:
            return shard in self._held and len(self._held) > self._share and shard == max(self._held)

    def held(self, shard: int, holding: bool) -> None:
        with self._lock:
            if holding:
                self._held.add(shard)
            else:
                self._held.discard(shard)

    @property
    def holding(self) -> frozenset[int]:
        with self._lock:
            return frozenset(self._held)
