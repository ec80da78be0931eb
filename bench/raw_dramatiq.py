"""The processor's reference: plain Dramatiq (RedisBroker, default middleware) with no-op actors that count.

Run as `dramatiq bench.raw_dramatiq --processes 2 --threads 8`, configured by BENCH_REDIS_URL. Each actor takes
the event as a dict — what a team sends from its webhook endpoint — and INCRs the same counter Hookyard's bench
handlers do (bench/handlers.py), over its own client, so both pay for it. bench/dramatiq_fill.py fills the queue.
"""

from __future__ import annotations

import os
from typing import Any, Final

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker

from bench.dramatiq_fill import DONE, NAMESPACE, QUEUE, actor_name

__all__ = ["ACTORS"]

MAX_ACTORS: Final = 5

dramatiq.set_broker(RedisBroker(url=os.environ["BENCH_REDIS_URL"], namespace=NAMESPACE))  # type: ignore[no-untyped-call]
_counter = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])


def _noop(event: dict[str, Any]) -> None:
    _counter.incr(DONE)


ACTORS: Final = tuple(dramatiq.actor(actor_name=actor_name(i), queue_name=QUEUE)(_noop) for i in range(MAX_ACTORS))
