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
from processor.reconcile.state import Cursor, ReconcileState
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
#: An `after` cursor whose event is older than this is not trusted: the Events API keeps 30 days.
_AFTER_MAX_AGE_MS = 25 * 86_400_000


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
        now = self.clock_ms()
        held_ms = self.state.not_before_ms() - now
        if held_ms > 0:
            return held_ms / 1000  # a backoff (this leader's or a previous one's) still runs
        cursor = self.state.cursor()
        start, after = self._start(cursor, now)
        query = EventsQuery(self.types, self.config.organization, start, now - int(self.config.settle_s * 1000))
        try:
            result = self.reconciler.run(
                query, after, max_pages=PAGES_PER_ROUND, keep_cursor=True, token=self.token, renew=self._renew,
                remember=True,
            )  # fmt: skip
        except EventsApiUnavailable as exc:
            self._backoff_s = min(_MAX_BACKOFF_S, max(_MIN_BACKOFF_S, self._backoff_s * 2))
            wait = max(self._backoff_s, exc.retry_after_s or 0.0)
            self.reconciler.defer(wait)  # whoever leads next waits too
            log.warning("reconcile.api_unavailable", reason=str(exc)[:200], retry_in_s=round(wait, 1))
            return wait
        except EventsApiError as exc:
            if after is not None and self.api.refused_param == "after":
                return self._restart(cursor, now)
            # A refusal (a revoked key, a filter the API rejects) will not pass by itself: say so, slowly.
            log.error("reconcile.api_refused", reason=str(exc)[:300])
            return max(interval, _MAX_BACKOFF_S)
        self._backoff_s = 0.0
        if result.cursor.position_ms:
            self.state.forget_read(self._window_start(result.cursor))
        if result.caught_up or result.lease_lost:
            return interval
        return 0.0  # more pages wait: go on at once (the lease was renewed before every page)

    def _start(self, cursor: Cursor, now: int) -> tuple[int | None, str | None]:
        """Where a round starts: (range start, after). A backlog goes on after the last event read; a caught-up
        cursor reads again from an overlap window back, so an event WorkOS lists late is still found."""
        if not cursor.position_ms:
            return (None, cursor.after) if cursor.after else (now - int(self.config.since_s * 1000), None)
        if cursor.after and not cursor.caught_up:
            if now - (cursor.after_ms or cursor.position_ms) < _AFTER_MAX_AGE_MS:
                return None, cursor.after
            log.info("reconcile.cursor_aged", after=cursor.after, position_ms=cursor.position_ms)
        return self._window_start(cursor), None

    def _window_start(self, cursor: Cursor) -> int:
        """The overlap window's start: a settle time before the position, and never after the last event read."""
        start = (cursor.position_ms or 0) - int(self.config.settle_s * 1000)
        return min(start, cursor.after_ms) if cursor.after_ms else start

    def _restart(self, cursor: Cursor, now: int) -> float:
        """The API no longer knows the `after` event (older than its 30 days): go on from the cursor's time."""
        log.warning("reconcile.cursor_refused", after=cursor.after, position_ms=cursor.position_ms)
        restart = Cursor(None, cursor.position_ms, now, caught_up=False, after_ms=None)
        self.state.save_cursor(restart, self.token)
        return 0.0

    def close(self) -> None:
        self.state.release_lease(self.token)
        self.api.close()
