"""The reconciler's lag as a Prometheus gauge, read from Redis at scrape time (the cursor lives there, not in any
one worker process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import redis
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from processor.reconcile.state import ReconcileState
from shared.errors import StoreUnavailable

__all__ = ["ReconcileCollector"]


class ReconcileCollector(Collector):
    """`hookyard_reconcile_cursor_lag_seconds`: now minus the time up to which the Events API has been read (absent
    until a reconcile round has stored a cursor)."""

    def __init__(self, client: redis.Redis, clock_ms: Callable[[], int]) -> None:
        self.state = ReconcileState(client)
        self.clock_ms = clock_ms

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            cursor = self.state.cursor()
        except StoreUnavailable:
            return  # hookyard_store_up (the backlog collector) says Redis did not answer
        if cursor.position_ms is None:
            return
        lag = GaugeMetricFamily(
            "hookyard_reconcile_cursor_lag_seconds",
            "How far behind now the Events API reconciler has read every event (its settle time included).",
        )
        lag.add_metric([], max(0.0, (self.clock_ms() - cursor.position_ms) / 1000))
        yield lag
