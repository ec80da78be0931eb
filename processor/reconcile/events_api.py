"""The WorkOS Events API (`GET /events`) as the reconciler sees it: one page of events after a cursor, through the
official `workos` SDK (`events.list_events`), with the SDK's errors translated into ours at this boundary.

The SDK turns each event into a typed model; the reconciler wants the event object as WorkOS sent it (a handler
must see the same `data` whichever channel brought the event), so the HTTP client handed to the SDK keeps the
JSON of the last response and the page's events are taken from it.
"""

from __future__ import annotations

import time
from datetime import UTC
from email.utils import parsedate_to_datetime

import httpx
import orjson
import workos
from workos.events.models import EventSchema

from processor.reconcile.query import PAGE_LIMIT, ApiPage, EventsQuery, api_time
from shared.errors import EventsApiError, EventsApiUnavailable
from shared.logging import get_logger

__all__ = ["EventsApi", "known_event_types"]

log = get_logger("hookyard.reconcile")

_TIMEOUT_S = 30


class EventsApi:
    """Lists events with the workos SDK; `base_url` may point at a staging or local stand-in."""

    def __init__(self, api_key: str, base_url: str) -> None:
        self._last_body: bytes = b""
        #: The parameter the API named when it refused the last request (`after`: it no longer knows the cursor).
        self.refused_param: str | None = None
        # The SDK retries with sleeps of its own; the reconciler backs off itself (honouring Retry-After), so
        # the SDK sends each request once.
        self._http = httpx.Client(timeout=_TIMEOUT_S, event_hooks={"response": [self._keep_body]})
        self._sdk = workos.WorkOSClient(
            api_key=api_key, base_url=base_url, request_timeout=_TIMEOUT_S, max_retries=0, http_client=self._http
        )

    def _keep_body(self, response: httpx.Response) -> None:
        self._last_body = response.read()

    def page(self, query: EventsQuery, after: str | None, limit: int = PAGE_LIMIT) -> ApiPage:
        """The events after `after` (or from the range's start); raises `EventsApiUnavailable` when the API
        cannot answer now, `EventsApiError` when it refuses the request."""
        self._last_body = b""
        self.refused_param = None
        try:
            page = self._sdk.events.list_events(
                events=list(query.types),
                after=after,
                limit=limit,
                organization_id=query.organization,
                range_start=api_time(query.range_start_ms) if query.range_start_ms is not None else None,
                range_end=api_time(query.range_end_ms) if query.range_end_ms is not None else None,
            )
        except workos.RateLimitExceededError as exc:
            raise EventsApiUnavailable("events API: rate limited (429)", exc.retry_after) from None
        except workos.ServerError as exc:
            raise EventsApiUnavailable(f"events API: HTTP {exc.status_code}", _retry_after(exc)) from None
        except workos.WorkOSError as exc:
            status = getattr(exc, "status_code", None)
            if isinstance(status, int) and status < 500:
                param = getattr(exc, "param", None)
                self.refused_param = param if isinstance(param, str) else None
                raise EventsApiError(f"events API refused the request: {str(exc)[:300]}") from None
            if isinstance(exc.__cause__, KeyError | ValueError | TypeError) and self._last_body:
                # The page arrived, but one of its events does not fit the SDK's typed models (they lag the API
                # when WorkOS adds an event type or field): the page as WorkOS sent it is all we use anyway.
                log.warning("reconcile.sdk_model_mismatch", reason=str(exc)[:200])
                return self._page_from_body(None)
            # No answer at all: connection refused or reset, a timeout, a body that is not an event list.
            raise EventsApiUnavailable(f"events API unreachable: {type(exc).__name__}: {str(exc)[:200]}") from None
        return self._page_from_body(len(page.data))

    def _page_from_body(self, count: int | None) -> ApiPage:
        try:
            document = orjson.loads(self._last_body)
        except orjson.JSONDecodeError:
            raise EventsApiUnavailable("events API: the page is not JSON") from None
        events = document.get("data") if isinstance(document, dict) else None
        if not isinstance(events, list) or (count is not None and len(events) != count):
            raise EventsApiUnavailable("events API: the page has no event list")
        metadata = document.get("list_metadata")
        after = metadata.get("after") if isinstance(metadata, dict) else None
        return ApiPage(
            events=[event for event in events if isinstance(event, dict)],
            after=after if isinstance(after, str) and after else None,
        )

    def close(self) -> None:
        self._sdk.close()
        self._http.close()


def _retry_after(exc: workos.ServerError) -> float | None:
    headers = getattr(exc.response, "headers", None) or {}
    raw = headers.get("Retry-After") or headers.get("retry-after")
    return retry_after_seconds(raw, time.time()) if raw else None


def retry_after_seconds(raw: str, now_s: float) -> float | None:
    """A `Retry-After` value in seconds from `now_s`: either form HTTP allows (a number of seconds, or an
    HTTP-date); `None` when it is neither."""
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT; a date without a zone is read as such
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_s)


def known_event_types() -> tuple[str, ...]:
    """Every event type the installed workos SDK knows (its event models' discriminator values)."""
    return tuple(sorted(EventSchema._DISPATCH))
