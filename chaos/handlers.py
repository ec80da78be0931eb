"""The two handlers of the chaos run. Each appends what it saw to a ledger kept in a separate Redis (not the one
under test, which the run restarts), and marks what it has in flight so the run can time each recovery."""

from __future__ import annotations

import os
import time

import redis

from processor import Event, handler

LEDGER = "chaos:ledger"
IN_FLIGHT = "chaos:inflight"
_client: redis.Redis | None = None
_WORK_S = float(os.environ.get("CHAOS_WORK_MS", "20")) / 1000


def _ledger() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["CHAOS_LEDGER_URL"])
    return _client


def _run(name: str, event: Event) -> None:
    client = _ledger()
    marker = f"{name}|{event.id}"
    client.hset(IN_FLIGHT, marker, os.getpid())
    # Some work per event (CHAOS_WORK_MS), so kills land mid-handler.
    time.sleep(_WORK_S)
    line = f"{name}|{event.id}|{event.attempt}|{int(event.late)}|{os.getpid()}|{time.time_ns()}"
    pipe = client.pipeline(transaction=True)
    pipe.rpush(LEDGER, line)
    pipe.hdel(IN_FLIGHT, marker)
    pipe.execute()


@handler("dsync.*", name="chaos.ordered", max_attempts=20, min_backoff=0.2, max_backoff=2)
def ordered(event: Event) -> None:
    _run("chaos.ordered", event)


@handler("dsync.*", name="chaos.unordered", order_by="none", max_attempts=20, min_backoff=0.2, max_backoff=2)
def unordered(event: Event) -> None:
    _run("chaos.unordered", event)
