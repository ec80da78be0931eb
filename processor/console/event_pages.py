"""Events: the archive newest first (filtered, a cursor per page, new arrivals pushed live by server-sent events),
one event with its exact bytes and where it stands with every handler, and resending it to one handler."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import anyio
import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from processor import event_lookup
from processor.cli.arguments import time_bound
from processor.cli.context import open_store
from processor.cli.event_index import EventFilter, Follower, page
from processor.cli.event_status import handler_statuses
from processor.console.actions import audit, authorized_form
from processor.console.redact import redact
from processor.console.rendering import console_of, event_href
from processor.console.rendering import page as render
from processor.records import ArchivedEvent
from shared import keys
from shared.clock import wall_ms
from shared.errors import HookyardError

if TYPE_CHECKING:
    from processor.console.app import Console

__all__ = ["ROUTES"]

PAGE_SIZE = 50
#: Index entries one page looks at, at most, when filters need each event's body or status: a narrow filter
#: over a large archive answers with a "look further" link instead of reading the whole index.
SCAN_LIMIT = 5_000
#: ... and when the status filter must also read each event's state with its handlers (a round trip each).
STATUS_SCAN_LIMIT = 500
#: A cursor's time is milliseconds since 1970: 15 digits last past the year 30000.
_CURSOR_DIGITS = 15
_STATUSES = ("pending", "running", "dead", "skipped", "done")
_STREAM_POLL_S = 1.0
_STREAM_KEEPALIVE_S = 15.0


class _BadQuery(HookyardError):
    """A query parameter the console cannot use (answered 400 with the reason)."""


def _text(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value or None


def _filters(request: Request, now_ms: int) -> tuple[EventFilter, int | None, int | None]:
    status = _text(request, "status")
    if status is not None and status not in _STATUSES:
        raise _BadQuery(f"status must be one of {', '.join(_STATUSES)}")
    bounds: list[int | None] = []
    for name in ("since", "until"):
        raw = _text(request, name)
        try:
            bounds.append(time_bound(raw).resolve(now_ms) if raw else None)
        except argparse.ArgumentTypeError as exc:
            raise _BadQuery(f"{name}: {exc}") from None
    paths = console_of(request).settings.console.redact
    for name, field in (("resource", "id"), ("organization", "organization_id")):
        if _text(request, name) is not None and _hides(paths, field):
            raise _BadQuery(f"{name}: not while HOOKYARD_CONSOLE_REDACT hides data.{field} (it would reveal it)")
    wanted = EventFilter(
        source=_text(request, "source"),
        type_glob=_text(request, "type"),
        resource=_text(request, "resource"),
        handler=_text(request, "handler"),
        status=status,
        organization=_text(request, "organization"),
    )
    return wanted, bounds[0], bounds[1]


def _hides(paths: tuple[str, ...], field: str) -> bool:
    """Whether a redaction path hides `data.<field>` (or, for `id`, any `*_id` field of data the resource
    filter also matches)."""
    for path in paths:
        head, *rest = path.split(".")
        if head not in ("data", "*"):
            continue
        if not rest or rest[0] in ("*", field) or (field == "id" and rest[0].endswith("_id")):
            return True
    return False


def _cursor(raw: str | None) -> tuple[int, str] | None:
    if raw is None:
        return None
    ms, _, member = raw.partition(":")
    if not (ms.isascii() and ms.isdigit() and len(ms) <= _CURSOR_DIGITS) or ":" not in member:
        raise _BadQuery("after: not a cursor this console made")
    return int(ms), member


async def events(request: Request) -> Response:
    console: Console = console_of(request)
    wanted_id = _text(request, "id")
    if wanted_id is not None:
        try:
            found = await run_in_threadpool(event_lookup.find_event, console.client, console.sources, wanted_id)
        except HookyardError as exc:
            return render(request, "events.html", 404, rows=[], query=request.query_params, error=str(exc))
        return RedirectResponse(event_href(found.source, found.event_id), 303)
    try:
        now_ms = wall_ms()
        wanted, since, until = _filters(request, now_ms)
        after = _cursor(_text(request, "after"))
    except _BadQuery as exc:
        return render(request, "events.html", 400, rows=[], query=request.query_params, error=str(exc))
    status_of = None
    if wanted.status is not None:
        status_of = event_lookup.status_lookup(console.client, console.settings, now_ms, console.registry)
    found_page = await run_in_threadpool(
        page,
        console.client,
        wanted,
        since=since,
        until=until,
        limit=PAGE_SIZE,
        after=after,
        scan_limit=SCAN_LIMIT if wanted.status is None else STATUS_SCAN_LIMIT,
        status_of=status_of,
    )
    next_query = None
    if found_page.next_after is not None:
        params = {k: v for k, v in request.query_params.items() if k != "after" and v}
        params["after"] = f"{found_page.next_after[0]}:{found_page.next_after[1]}"
        next_query = params
    return render(
        request,
        "events.html",
        rows=found_page.rows,
        query=request.query_params,
        next_query=next_query,
        live=after is None and wanted.status is None,
        error=None,
    )


async def stream(request: Request) -> Response:
    """New events as server-sent events (`event: row`, `data:` the table row's HTML), until the page leaves."""
    console: Console = console_of(request)
    try:
        wanted, _, _ = _filters(request, wall_ms())
    except _BadQuery as exc:
        return Response(f"bad query: {exc}\n", status_code=400, media_type="text/plain")
    wanted = EventFilter(wanted.source, wanted.type_glob, wanted.resource, wanted.handler, None, wanted.organization)
    follower = await run_in_threadpool(Follower, console.client, wanted, wall_ms)
    row_template = request.app.state.templates.get_template("_event_row.html")

    async def messages() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        quiet = 0.0
        while not await request.is_disconnected():
            await anyio.sleep(_STREAM_POLL_S)
            rows = await run_in_threadpool(follower.look)
            for row in rows:
                html = row_template.render(row=row)
                yield "event: row\n" + "".join(f"data: {line}\n" for line in html.splitlines()) + "\n"
            quiet = 0.0 if rows else quiet + _STREAM_POLL_S
            if quiet >= _STREAM_KEEPALIVE_S:
                quiet = 0.0
                yield ": keep-alive\n\n"

    return StreamingResponse(messages(), media_type="text/event-stream", headers={"cache-control": "no-store"})


async def event(request: Request) -> Response:
    console: Console = console_of(request)
    source, event_id = request.path_params["source"], request.path_params["event_id"]
    context = await run_in_threadpool(_event_context, console, source, event_id)
    if context is None:
        message = f"no event {event_id!r} from {source!r} in the archive; it may be past HOOKYARD_RETENTION"
        return render(request, "event.html", 404, missing=message)
    return render(request, "event.html", missing=None, **context)


def _archived(console: Console, source: str, event_id: str) -> ArchivedEvent | None:
    entry = console.client.hgetall(keys.event_keys(source, event_id).archive)
    return ArchivedEvent.decode(event_id, entry) if entry else None  # type: ignore[arg-type]


def _event_context(console: Console, source: str, event_id: str) -> dict[str, Any] | None:
    archived = _archived(console, source, event_id)
    if archived is None:
        return None
    now_ms = wall_ms()
    statuses = handler_statuses(console.client, console.registry, archived, now_ms, window_ms=console.timings.window_ms)
    document = event_lookup.event_document(archived, statuses, now_ms)
    paths = console.settings.console.redact
    try:
        envelope = redact(document["envelope"], paths)
    except RecursionError:  # a path into lists nested about a thousand deep
        envelope = _TOO_DEEP
    pretty = envelope if isinstance(envelope, str) else _pretty(envelope)
    return {
        "doc": document,
        "statuses": list(zip(statuses, document["handlers"], strict=True)),
        "pretty": pretty,
        "exact": None if paths else archived.raw.decode(errors="replace"),
        "redacted": paths,
    }


_TOO_DEEP = "(too deeply nested to display)"


def _pretty(envelope: object) -> str:
    try:
        return orjson.dumps(envelope, option=orjson.OPT_INDENT_2).decode()
    except orjson.JSONEncodeError:
        # Nested deeper than orjson writes (254 levels): no indented view; the exact bytes stay on offer unless a
        # redaction is set (then nothing of the body is shown).
        return _TOO_DEEP


async def resend(request: Request) -> Response:
    console: Console = console_of(request)
    source, event_id = request.path_params["source"], request.path_params["event_id"]
    checked = await authorized_form(request, "resend")
    if isinstance(checked, Response):
        return checked
    form, access = checked
    handler = form.get("handler")
    outcome = await run_in_threadpool(_resend, console, source, event_id, handler if isinstance(handler, str) else "")
    audit(access, "resend", outcome, event_id=event_id, source=source, handler=handler)
    return RedirectResponse(f"{event_href(source, event_id)}?{urlencode({'notice': outcome})}", 303)


def _resend(console: Console, source: str, event_id: str, handler: str) -> str:
    archived = _archived(console, source, event_id)
    if archived is None:
        return "expired"
    statuses = handler_statuses(
        console.client, console.registry, archived, wall_ms(), window_ms=console.timings.window_ms
    )
    status = next((s for s in statuses if s.handler == handler), None)
    target = status.target() if status is not None else None
    if status is None or target is None:
        return "not_routed"
    if status.status != "done":
        return status.status
    return open_store(console.client, console.settings).pairs.resend(target, archived, wall_ms())


ROUTES = [
    Route("/events", events, name="events"),
    Route("/events/stream", stream, name="events_stream"),
    # `path`: an event id may hold '/' (links escape it, and the server hands the path over unescaped).
    Route("/events/{source}/{event_id:path}", event, name="event"),
    Route("/events/{source}/{event_id:path}/resend", resend, methods=["POST"], name="resend"),
]
