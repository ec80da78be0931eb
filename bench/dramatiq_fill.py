"""Filling raw Dramatiq's queue as `actor.send` would, but a thousand messages per round trip.

Kept apart from bench/raw_dramatiq.py (the worker module, which builds its broker from the environment at
import, as a Dramatiq app does) so the bench process can fill the queue without importing it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Final

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis

__all__ = ["DONE", "NAMESPACE", "QUEUE", "actor_name", "prefill"]

DONE: Final = "bench:done"  # the counter bench/handlers.py INCRs too
NAMESPACE: Final = "bench-raw"
QUEUE: Final = "default"


def actor_name(index: int) -> str:
    return f"bench_noop_{index}"


def prefill(redis_url: str, events: Iterable[dict[str, Any]], actors: int, *, batch: int = 1000) -> int:
    """Enqueue one message per event for each of the first `actors` actors; returns how many were stored.

    Each is what `RedisBroker.enqueue` stores for `actor.send(event)`: same message encoding, same dispatch
    script and arguments (no delay; no maintenance roll, which enqueue skips too) — only pipelined.
    """
    broker = RedisBroker(url=redis_url, namespace=NAMESPACE, middleware=[])  # type: ignore[no-untyped-call]
    try:
        dispatch = broker.scripts["dispatch"]
        max_unpack = broker._max_unpack_size()  # type: ignore[no-untyped-call]
        pipe = broker.client.pipeline(transaction=False)
        stored = 0
        for event in events:
            for index in range(actors):
                redis_message_id = str(uuid.uuid4())
                options = {"redis_message_id": redis_message_id}
                message: dramatiq.Message[Any] = dramatiq.Message(
                    queue_name=QUEUE, actor_name=actor_name(index), args=(event,), kwargs={}, options=options
                )
                args = ["enqueue", current_millis(), QUEUE, broker.broker_id, broker.heartbeat_timeout,
                        broker.dead_message_ttl, 0, max_unpack, redis_message_id, message.encode()]  # fmt: skip
                dispatch(keys=[NAMESPACE], args=args, client=pipe)
                stored += 1
                if stored % batch == 0:
                    pipe.execute()
        pipe.execute()
        return stored
    finally:
        broker.close()
