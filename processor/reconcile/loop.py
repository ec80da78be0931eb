"""Continuous reconciliation in the workers (`HOOKYARD_RECONCILE_INTERVAL`): one leader at a time under a lease
in Redis, a cursor kept in Redis, a bounded number of pages per round, and backoff on 429/5xx/outages that
honours the API's `Retry-After`."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import redis

from processor.handlers import Registry
from processor.metrics import WorkerMetrics
from processor.reconcile.events_api import EventsApi, known_event_types
from processor.reconcile.query import EventsQuery
from processor.reconcile.reconciler import Reconciler
from processor.reconcile.state import ReconcileState
from shared.errors import ConfigError, EventsApiError, EventsApiUnavailable
from shared.logging import get_logger
from shared.settings import ReconcileSettings

__all__ = ["PAGES_PER_ROUND", "ReconcileLoop", "event_types"]

log = get_logger("hookyard.reconcile")

#: A leader reads at most this many pages (100 events each) before it sleeps a round and renews its lease.
PAGES_PER_ROUND = 20
_MIN_BACKOFF_S = 1.0
_MAX_BACKOFF_S = 300.0
_LEASE_MS = 60_000  # longer than a page request can take (the client's timeout is 30 s)


def event_types(config: ReconcileSettings, registry: Registry) -> tuple[str, ...]:
    """The `events` filter: the configured types, else every type the SDK knows that a loaded handler takes."""
    if config.types:
        return config.types
    wanted = tuple(t for t in known_event_types() if registry.matching(t))
    if not wanted:
        raise ConfigError("HOOKYARD_RECONCILE_TYPES", "no loaded handler takes an event type the Events API lists")
    return wanted


class ReconcileLoop:
    """One worker's part in continuous reconciliation: `step` runs a round if this worker leads."""

    def __init__(
        self,
        config: ReconcileSettings,
        registry: Registry,
        client: redis.Redis,
        *,
        clock_ms: Callable[[], int],
        metrics: WorkerMetrics | None = None,
    ) -> None:
        if config.api_key is None:
            raise ConfigError("WORKOS_API_KEY", "not set: the reconciler cannot call the Events API")
        self.config = config
        self.types = event_types(config, registry)
        self.state = ReconcileState(client)
        self.api = EventsApi(config.api_key.value.decode(), config.base_url)
        self.reconciler = Reconciler(self.api, client, source=config.source, clock_ms=clock_ms, metrics=metrics)
        self.clock_ms = clock_ms
        self.token = uuid.uuid4().hex
        self._backoff_s = 0.0

    def _renew(self) -> bool:
        return self.state.hold_lease(self.token, _LEASE_MS)

    def step(self) -> float:
        """Run one round if this worker holds (or takes) the lease; returns the seconds until the next round."""
        interval = self.config.interval_s
        if not self._renew():
            return interval  # another worker leads; take over if its lease lapses
        cursor = self.state.cursor()
        now = self.clock_ms()
        start = None
        if cursor.after is None:
            start = cursor.position_ms or now - int(self.config.since_s * 1000)
        query = EventsQuery(self.types, self.config.organization, start, now - int(self.config.settle_s * 1000))
        try:
            result = self.reconciler.run(
                query, cursor.after, max_pages=PAGES_PER_ROUND, keep_cursor=True, token=self.token, renew=self._renew
            )
        except EventsApiUnavailable as exc:
            self._backoff_s = min(_MAX_BACKOFF_S, max(_MIN_BACKOFF_S, self._backoff_s * 2))
            wait = max(self._backoff_s, exc.retry_after_s or 0.0)
            log.warning("reconcile.api_unavailable", reason=str(exc)[:200], retry_in_s=round(wait, 1))
            return wait
        except EventsApiError as exc:
            # A refusal (a revoked key, a filter the API rejects) will not pass by itself: say so, slowly.
            log.error("reconcile.api_refused", reason=str(exc)[:300])
            return max(interval, _MAX_BACKOFF_S)
        self._backoff_s = 0.0
        if result.caught_up or result.lease_lost:
            return interval
        return 0.0  # more pages wait: go on at once (the lease was renewed before every page)

    def close(self) -> None:
        self.state.release_lease(self.token)
        self.api.close()
