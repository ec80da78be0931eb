"""The benchmark's Hookyard handlers (`HOOKYARD_HANDLERS=bench.handlers`): no-ops that count in Redis.

Shaped by the environment of the worker processes:

- `BENCH_HANDLERS` (1): how many handlers, `bench.noop.0` … `bench.noop.<n-1>`, each on every dsync event;
- `BENCH_ORDER_BY` (`resource`): their `order_by`;
- `BENCH_MODE` (`count`): `count` only INCRs `bench:done`; `lag` also records completion time minus issue
  time; `markers` marks each event in flight (like chaos/handlers.py) and works `BENCH_WORK_MS` before finishing,
  so a SIGKILL lands mid-handler and the bench can time how long the killed worker's events take to finish.

The counter lives in the Redis under test (`REDIS_URL`), reached over a client of its own: the raw Dramatiq
reference's actor does the same INCR, so both pay for it. `BENCH_COUNTER_URL` puts it in another Redis instead
(the capacity part: a cluster's store, whose per-event Redis cost is what is measured, has no room for it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Final

import redis

from processor import Event, handler

__all__ = ["DONE", "FINISHED", "IN_FLIGHT", "LAG_MS", "counter_client"]

DONE: Final = "bench:done"  # INCR per handler call (the raw Dramatiq actors share it)
LAG_MS: Final = "bench:lag_ms"  # list: completion minus issued_at, ms (lag mode)
IN_FLIGHT: Final = "bench:inflight"  # hash "<handler>|<event id>" -> worker pid (markers mode)
FINISHED: Final = "bench:finished"  # hash "<handler>|<event id>" -> completion time, unix ns (markers mode)

_client: redis.Redis | None = None


def counter_client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ.get("BENCH_COUNTER_URL") or os.environ["REDIS_URL"])
    return _client


def _count(event: Event) -> None:
    counter_client().incr(DONE)


def _lag(event: Event) -> None:
    lag_ms = time.time() * 1000 - event.issued_at.timestamp() * 1000
    pipe = counter_client().pipeline(transaction=False)
    pipe.rpush(LAG_MS, round(lag_ms, 3))
    pipe.incr(DONE)
    pipe.execute()


def _markers(name: str, work_s: float) -> Callable[[Event], None]:
    def run(event: Event) -> None:
        client = counter_client()
        marker = f"{name}|{event.id}"
        client.hset(IN_FLIGHT, marker, os.getpid())
        time.sleep(work_s)
        pipe = client.pipeline(transaction=True)
        pipe.hdel(IN_FLIGHT, marker)
        pipe.hset(FINISHED, marker, time.time_ns())
        pipe.incr(DONE)
        pipe.execute()

    return run


def _register() -> None:
    count = int(os.environ.get("BENCH_HANDLERS", "1"))
    order_by = os.environ.get("BENCH_ORDER_BY", "resource")
    mode = os.environ.get("BENCH_MODE", "count")
    work_s = float(os.environ.get("BENCH_WORK_MS", "0")) / 1000
    for i in range(count):
        name = f"bench.noop.{i}"
        func = _markers(name, work_s) if mode == "markers" else _lag if mode == "lag" else _count
        handler("dsync.*", name=name, order_by=order_by)(func)


_register()
