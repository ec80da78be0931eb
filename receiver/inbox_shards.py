"""Appends spread over several inbox shards (`HOOKYARD_INBOX_SHARDS`), each with a writer and batches of its own,
so that on a cluster the writes, and the ingesters draining them, spread over the primaries.

An event's shard is a hash of its source and id: every copy of one event lands in one list, in the order received,
so the first copy received is the first admitted and its body is the one that stands (a redelivery with another
body never runs). Across events the shard does not matter for order: the processor orders by issued time within
the hold-back window, whatever the inbox order. The receiver records how many shards it writes (the inbox
*width*), so that ingesters drain every shard a receiver may write to even if their own setting is smaller.
"""

from __future__ import annotations

import asyncio
import contextlib

from redis.asyncio import Redis
from redis.exceptions import RedisError

from receiver.inbox import InboxWriter
from receiver.metrics import ReceiverMetrics
from shared import scripts
from shared.keys import INBOX_WIDTH, inbox_shard
from shared.logging import get_logger

__all__ = ["ShardedInbox"]

_WIDEN_RETRY_S = 1.0
#: The record is re-asserted this often: a failover may take back a write that had not reached the replica.
_WIDEN_EVERY_S = 5.0


class ShardedInbox:
    """One `InboxWriter` per shard, chosen by event; the same `append`/`close`/`pending` as a single writer."""

    def __init__(
        self,
        redis: Redis,
        *,
        shards: int,
        timeout_s: float,
        min_replicas: int = 0,
        metrics: ReceiverMetrics | None = None,
    ) -> None:
        self._redis = redis
        self._writers = [
            InboxWriter(redis, timeout_s=timeout_s, shard=shard, min_replicas=min_replicas, metrics=metrics)
            for shard in range(shards)
        ]
        self._widen: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Record the inbox width in the background, again every few seconds for the receiver's life."""
        self._widen = asyncio.get_running_loop().create_task(self._record_width())

    async def append(self, message: bytes, source: str = "", event_id: str = "") -> None:
        await self._writers[inbox_shard(source, event_id, len(self._writers))].append(message)

    async def close(self) -> None:
        if self._widen is not None:
            self._widen.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._widen
        await asyncio.gather(*(writer.close() for writer in self._writers))

    @property
    def pending(self) -> int:
        return sum(writer.pending for writer in self._writers)

    async def _record_width(self) -> None:
        while True:
            try:
                await self._redis.eval(scripts.source("inbox_width"), 1, INBOX_WIDTH, len(self._writers))
                pause = _WIDEN_EVERY_S
            except (RedisError, OSError) as exc:
                get_logger("hookyard.receiver.inbox").debug("inbox.width_not_recorded", error=type(exc).__name__)
                pause = _WIDEN_RETRY_S
            await asyncio.sleep(pause)
