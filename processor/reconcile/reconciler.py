"""One reconciliation pass: page through the Events API after a cursor and feed every event no arrival has
brought yet into the receiver's inbox, marked as an Events API copy (`shared.wire.EVENTS_API`).

From the inbox on, an API copy is an arrival like any webhook: the ingester dedupes it by (source, event id)
against the webhooks, orders it by its `created_at` and routes it to the same handlers. Checking the dedupe
markers first only spares the inbox the events already known; a webhook racing its API copy is caught by the
ingester's dedupe all the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import redis

from processor.inbox_feed import append_to_inbox
from processor.metrics import WorkerMetrics
from processor.reconcile.query import EventsQuery
from processor.reconcile.state import Cursor, ReconcileState
from shared.envelope import issued_at_ms, parse_created_at, parse_routing
from shared.errors import EnvelopeError, EventsApiError, EventsApiUnavailable
from shared.logging import get_logger
from shared.wire import EVENTS_API, QueuedEvent

if TYPE_CHECKING:
    from processor.reconcile.events_api import EventsApi

__all__ = ["PassResult", "Reconciler", "api_copy"]

log = get_logger("hookyard.reconcile")


@dataclass(slots=True)
class PassResult:
    """What a pass did: events fetched, of which new (fed to the inbox), already seen, and unusable; pages read;
    whether it reached the end of the list; where it stopped."""

    fetched: int = 0
    new: int = 0
    seen: int = 0
    invalid: int = 0
    pages: int = 0
    caught_up: bool = False
    lease_lost: bool = False
    cursor: Cursor = field(default_factory=Cursor)


def api_copy(event: dict[str, Any], source: str, fetched_ms: int) -> QueuedEvent:
    """The queued message of an event as the Events API returned it; raises `EnvelopeError` if it is unusable.

    No signature covers an API copy: `signed_at_ms` is the event's `created_at` (the time WorkOS vouches for,
    or the fetch time when it has none) and `received_at_ms` the fetch time. The copy's age is no reason to
    refuse it: signature tolerance is a webhook's defence against replay, and this copy came from WorkOS over
    an authenticated request.
    """
    raw = orjson.dumps(event)
    event_id, event_type, document = parse_routing(raw)
    created = parse_created_at(document.get("created_at"))
    signed_ms = issued_at_ms(created, fetched_ms)
    return QueuedEvent(
        source=source,
        event_id=event_id,
        event_type=event_type,
        signed_at_ms=signed_ms,
        received_at_ms=fetched_ms,
        raw=raw,
        channel=EVENTS_API,
    )


class Reconciler:
    """Feeds Events API pages into the inbox for one source."""

    def __init__(
        self,
        api: EventsApi,
        client: redis.Redis,
        *,
        source: str,
        clock_ms: Callable[[], int],
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.api = api
        self.client = client
        self.state = ReconcileState(client)
        self.source = source
        self.clock_ms = clock_ms
        self.metrics = metrics

    def run(
        self,
        query: EventsQuery,
        after: str | None,
        *,
        max_pages: int | None = None,
        keep_cursor: bool = False,
        token: str | None = None,
        renew: Callable[[], bool] | None = None,
    ) -> PassResult:
        """Read pages after `after` until the end of the list (or `max_pages`). With `keep_cursor`, the cursor is
        stored after every page (fenced by `token`'s lease when given; `renew` keeps that lease before each page).
        Raises `EventsApiUnavailable` or `EventsApiError` from the API and `StoreUnavailable` from Redis: what was
        fed before stays fed, and the stored cursor says how far that was."""
        result = PassResult(cursor=Cursor(after=after))
        if after is not None:
            # A cursor says where to go on; a range start would only filter the same list again.
            query = EventsQuery(query.types, query.organization, None, query.range_end_ms)
        while max_pages is None or result.pages < max_pages:
            if renew is not None and not renew():
                result.lease_lost = True
                break
            try:
                page = self.api.page(query, result.cursor.after)
            except EventsApiUnavailable:
                if self.metrics is not None:
                    self.metrics.reconcile_requests.labels("unavailable").inc()
                raise
            except EventsApiError:
                if self.metrics is not None:
                    self.metrics.reconcile_requests.labels("refused").inc()
                raise
            if self.metrics is not None:
                self.metrics.reconcile_requests.labels("ok").inc()
            result.pages += 1
            now = self.clock_ms()
            position = self._feed(page.events, now, result)
            next_after = page.after or (str(page.events[-1].get("id")) if page.events else result.cursor.after)
            result.caught_up = page.after is None
            if result.caught_up:
                # Every event created before the range's end has been read.
                position = query.range_end_ms if query.range_end_ms is not None else now
            result.cursor = Cursor(next_after, position or result.cursor.position_ms, now)
            if keep_cursor and not self.state.save_cursor(result.cursor, token):
                result.lease_lost = True
                log.warning("reconcile.lease_lost", pages=result.pages)
                break
            if result.caught_up:
                break
        log.info("reconcile.pass", source=self.source, fetched=result.fetched, new=result.new, seen=result.seen,
                 invalid=result.invalid, pages=result.pages, caught_up=result.caught_up)  # fmt: skip
        return result

    def _feed(self, events: list[dict[str, Any]], now: int, result: PassResult) -> int | None:
        """Queue the page's unknown events; returns the created time of its last usable event."""
        copies: list[QueuedEvent] = []
        for event in events:
            try:
                copies.append(api_copy(event, self.source, now))
            except EnvelopeError as exc:
                # WorkOS's own list should never hold one; skip it rather than stall the cursor on it.
                log.error("reconcile.unusable_event", source=self.source, reason=exc.reason)
                result.invalid += 1
        known = self.state.known(self.source, [copy.event_id for copy in copies]) if copies else []
        fresh = [copy for copy, is_known in zip(copies, known, strict=True) if not is_known]
        append_to_inbox(self.client, fresh)
        result.fetched += len(events)
        result.new += len(fresh)
        result.seen += len(copies) - len(fresh)
        if self.metrics is not None:
            self.metrics.reconciled.labels("new").inc(len(fresh))
            self.metrics.reconciled.labels("seen").inc(len(copies) - len(fresh))
            if result.invalid:
                self.metrics.reconciled.labels("invalid").inc(len(events) - len(copies))
        return copies[-1].signed_at_ms if copies else None
