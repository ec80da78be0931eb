"""The processor's state store: every atomic step on Redis, as a typed call on one script, in four parts —
the inbox (`store.inbox`), the pair state machine (`store.pairs`), the archive (`store.archive`) and the
workers' upkeep (`store.upkeep`: sweep, heartbeats, letter retention).

Redis is the source of truth (docs/guarantees.md). Each call runs one script whose keys share one hash slot, so
a crash between two calls leaves a state the next call (or the sweep) picks up; Dramatiq messages only say
"look at these pairs now".
"""

from __future__ import annotations

import redis

from processor.records import StoreTimings
from processor.store.archive import Archive
from processor.store.calls import Scripts
from processor.store.inbox import POISON_LIMIT, Inbox
from processor.store.pairs import Pairs
from processor.store.upkeep import Upkeep

__all__ = ["POISON_LIMIT", "Store"]


class Store:
    """Typed access to the processor's Redis state; every outage surfaces as `StoreUnavailable`."""

    def __init__(self, client: redis.Redis, timings: StoreTimings) -> None:
        self.client = client
        self.timings = timings
        scripts = Scripts(client, min_replicas=timings.min_replicas, replica_wait_ms=timings.replica_wait_ms)
        self.inbox = Inbox(client, scripts)
        self.pairs = Pairs(client, scripts, timings)
        self.archive = Archive(client, scripts)
        self.upkeep = Upkeep(client, scripts, timings)
