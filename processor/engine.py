"""One worker process's processor, wired: Redis store, ingester, runner, the Dramatiq actor that carries
wake-ups, and the background loops (`processor.loops`) that a Dramatiq middleware starts with the worker.

Dramatiq messages only say "look at these pairs now": losing one costs latency (the sweep re-sends it after
the wake grace), doubling one costs a no-op claim. Correctness lives in Redis (processor/store.py); the messages
travel through the broker HOOKYARD_BROKER_URL names (processor/broker.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import dramatiq
import redis

from processor.broker import build_broker, close_broker
from processor.handlers import Registry
from processor.ingest import Ingester
from processor.leases import LeaseKeeper
from processor.loops import ProcessorLoops
from processor.metrics import WorkerMetrics
from processor.records import StoreTimings
from processor.runner import Runner
from processor.store import Store
from processor.wakes import WakeSender
from shared import keys
from shared.clock import wall_ms
from shared.errors import StoreUnavailable
from shared.logging import get_logger
from shared.outage import OutageLog
from shared.redis_clients import WORKER_LOOPS, redis_client
from shared.settings import Settings

__all__ = ["ACTOR_NAME", "Engine"]

log = get_logger("hookyard.engine")

ACTOR_NAME = "hookyard.run_pairs"
_MAX_PAIRS_PER_MESSAGE = 32


class Engine:
    """Everything a worker process needs to ingest and run events."""

    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        *,
        metrics: WorkerMetrics | None = None,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.metrics = metrics
        self.clock_ms = clock_ms
        self.client = redis_client(settings.redis_url, WORKER_LOOPS)
        #: For the ingesters' BLPOP on an idle inbox shard (a cluster client routes it to the shard's node itself).
        self.blocking_client = (
            self.client if settings.redis_cluster else redis.Redis(connection_pool=self.client.connection_pool)
        )
        self.timings = StoreTimings.from_settings(settings)
        #: Store outages, said once per outage by every part of this process.
        self.outage = OutageLog("hookyard.engine")
        self.store = Store(self.client, self.timings)
        self.broker = build_broker(settings.broker_url)
        self.actor: dramatiq.Actor[Any, Any] = dramatiq.Actor(
            self._run_pairs,
            broker=self.broker,
            actor_name=ACTOR_NAME,
            queue_name=keys.WAKE_QUEUE_NAME,
            priority=0,
            options={},
        )
        #: Sends the wake-ups from a thread of its own: a broker outage never holds a loop or a runner.
        self.wakes = WakeSender(self.actor, metrics=metrics)
        self.lease_keeper = LeaseKeeper(self.store, clock_ms, settings.lease_s, outage=self.outage)
        # The ingest lease outlives the client's socket timeout, so one slow admit is not a takeover.
        self.ingester = Ingester(
            self.store,
            registry,
            clock_ms=clock_ms,
            metrics=metrics,
            lease_ms=self.timings.lease_ms + 5000,
            future_tolerance_ms={name: int(src.tolerance_s * 1000) for name, src in settings.sources.items()},
        )
        self.runner = Runner(
            self.store,
            registry,
            clock_ms=clock_ms,
            send_wake=self.send_wake,
            lease_keeper=self.lease_keeper,
            metrics=metrics,
            handoff_after_s=settings.handoff_after_s,
            letter_retention_ms=self.timings.letter_retention_ms,
        )
        self.loops = ProcessorLoops(self)
        self.broker.add_middleware(self.loops)

    def _run_pairs(self, shard: int, pair_ids: list[str]) -> None:
        try:
            self.runner.run_pairs(shard, pair_ids)  # the count is for tests and the harness
        except StoreUnavailable as exc:
            # A claim taken stays leased until it expires; the sweep then hands it (and the pairs this wake-up
            # had not started) to a runner again.
            self.outage.failed("runner", exc)

    def send_wake(self, wake: list[tuple[int, str]], sender: str) -> None:
        """Send wake-ups for (shard, pair) items, a few pairs per message so threads share the work."""
        by_shard: dict[int, list[str]] = defaultdict(list)
        for shard, pair_id in wake:
            by_shard[shard].append(pair_id)
        threads = self.settings.worker_threads
        for shard, pair_ids in by_shard.items():
            size = max(1, min(_MAX_PAIRS_PER_MESSAGE, -(-len(pair_ids) // threads)))
            for start in range(0, len(pair_ids), size):
                self.wakes.submit(shard, pair_ids[start : start + size], sender)

    def close(self) -> None:
        self.loops.stop()
        self.runner.close()
        self.wakes.close()
        close_broker(self.broker)
        self.client.close()
