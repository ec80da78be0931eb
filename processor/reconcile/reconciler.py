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

#: How long the ids of events a loop round read are kept without a newer round (real time).
_READ_KEEP_MS = 86_400_000
#: A shared backoff deadline outlives the wait it stands for by this much (real time), then lapses.
_DEFER_KEEP_MS = 60_000


@dataclass(slots=True)
class PassResult:
    """What a pass did: events fetched, of which new (fed to the inbox), already seen, unusable, and read again in the
    loop's overlap window; pages read;
    whether it reached the end of the list; where it stopped."""

    fetched: int = 0
    new: int = 0
    seen: int = 0
    invalid: int = 0
    reread: int = 0  # read by an earlier round (the loop's overlap window): neither new nor seen again
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
        remember: bool = False,
    ) -> PassResult:
        """Read pages after `after` until the end of the list (or `max_pages`). With `keep_cursor`, the cursor is
        stored after every page (fenced by `token`'s lease when given; `renew` keeps that lease before each page).
        Raises `EventsApiUnavailable` or `EventsApiError` from the API and `StoreUnavailable` from Redis: what was
        fed before stays fed, and the stored cursor says how far that was.

        With `remember`, the ids read are kept (`{hy:reconcile}:read`) and an event read before is neither fed nor
        counted again: the loop reads an overlap window twice. No page is asked for before the shared backoff
        deadline (`{hy:reconcile}:not_before`), and a `Retry-After` the API sends moves that deadline."""
        result = PassResult(cursor=Cursor(after=after))
        if after is not None:
            # A cursor says where to go on; a range start would only filter the same list again.
            query = EventsQuery(query.types, query.organization, None, query.range_end_ms)
        while max_pages is None or result.pages < max_pages:
            if renew is not None and not renew():
                result.lease_lost = True
                break
            self._respect_backoff()
            try:
                page = self.api.page(query, result.cursor.after)
            except EventsApiUnavailable as exc:
                if self.metrics is not None:
                    self.metrics.reconcile_requests.labels("unavailable").inc()
                if exc.retry_after_s:
                    self.defer(exc.retry_after_s)
                raise
            except EventsApiError:
                if self.metrics is not None:
                    self.metrics.reconcile_requests.labels("refused").inc()
                raise
            if self.metrics is not None:
                self.metrics.reconcile_requests.labels("ok").inc()
            result.pages += 1
            now = self.clock_ms()
            position = last_ms = self._feed(page.events, now, result, remember)
            next_after = page.after or (str(page.events[-1].get("id")) if page.events else result.cursor.after)
            result.caught_up = page.after is None
            if result.caught_up:
                # Every event created before the range's end has been read.
                position = query.range_end_ms if query.range_end_ms is not None else now
            after_ms = last_ms if last_ms is not None else result.cursor.after_ms
            result.cursor = Cursor(next_after, position or result.cursor.position_ms, now, result.caught_up, after_ms)
            if keep_cursor and not self.state.save_cursor(result.cursor, token):
                result.lease_lost = True
                log.warning("reconcile.lease_lost", pages=result.pages)
                break
            if result.caught_up:
                break
        log.info("reconcile.pass", source=self.source, fetched=result.fetched, new=result.new, seen=result.seen,
                 invalid=result.invalid, reread=result.reread, pages=result.pages,
                 caught_up=result.caught_up)  # fmt: skip
        return result

    def defer(self, wait_s: float) -> None:
        """Keep every reconciler (this worker's, another's, the CLI) from the API for `wait_s` from now."""
        wait_ms = int(wait_s * 1000)
        self.state.defer(self.clock_ms() + wait_ms, wait_ms + _DEFER_KEEP_MS)

    def _respect_backoff(self) -> None:
        wait_ms = self.state.not_before_ms() - self.clock_ms()
        if wait_ms > 0:
            raise EventsApiUnavailable("events API: backing off (a reconciler was told to wait)", wait_ms / 1000)

    def _feed(self, events: list[dict[str, Any]], now: int, result: PassResult, remember: bool) -> int | None:
        """Queue the page's unknown events; returns the created time of its last usable event."""
        copies: list[QueuedEvent] = []
        for event in events:
            try:
                copies.append(api_copy(event, self.source, now))
            except EnvelopeError as exc:
                # WorkOS's own list should never hold one; skip it rather than stall the cursor on it.
                log.error("reconcile.unusable_event", source=self.source, reason=exc.reason)
                result.invalid += 1
        ids = [copy.event_id for copy in copies]
        known = self.state.known(self.source, ids) if copies else []
        read = self.state.already_read(self.source, ids) if copies and remember else [False] * len(copies)
        fresh = [copy for copy, k, r in zip(copies, known, read, strict=True) if not k and not r]
        append_to_inbox(self.client, fresh)
        if remember:
            # After the inbox: a crash between the two feeds an event twice (the ingester's dedupe drops it),
            # never marks one read that was not fed.
            self.state.mark_read(self.source, [(c.event_id, c.signed_at_ms) for c in copies], _READ_KEEP_MS)
        reread = sum(read)
        seen = len(copies) - len(fresh) - reread
        result.fetched += len(events)
        result.new += len(fresh)
        result.seen += seen
        result.reread += reread
        if self.metrics is not None:
            self.metrics.reconciled.labels("new").inc(len(fresh))
            self.metrics.reconciled.labels("seen").inc(seen)
            if result.invalid:
                self.metrics.reconciled.labels("invalid").inc(len(events) - len(copies))
        return copies[-1].signed_at_ms if copies else None
