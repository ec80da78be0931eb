"""`hookyard events list|show`: the archive of received events (kept `HOOKYARD_RETENTION`), newest first, filtered
or followed as they arrive, and one event in full — its envelope, its times, and where it stands with every handler
it was routed to. `events resend` lives in processor/cli/resend.py."""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from typing import Any

import orjson
import redis

from processor import event_lookup
from processor.cli.arguments import Verbs, positive_int, source_name, time_bound
from processor.cli.context import connect, settings_for_redis
from processor.cli.event_index import EventFilter, IndexedEvent, follow, newest
from processor.cli.event_status import HandlerStatus, handler_statuses
from processor.cli.render import age, iso, print_json, render_table, say
from processor.cli.resend import add_parser as add_resend_parser
from processor.handlers import Registry
from processor.records import StoreTimings
from shared.clock import wall_ms
from shared.settings import DEFAULT_SOURCE

__all__ = ["add_parser"]

_STATUSES = ("pending", "running", "dead", "skipped", "done")
_FOLLOW_POLL_S = 0.5
_FOLLOW_LINE = "{:<24}  {:<44}  {:<32}  {:<8}  {}"


def add_parser(verbs: Verbs) -> None:
    events = verbs.add_parser(
        "events",
        help="list received events, show one, or resend them to a handler",
        description="Look into the event archive (every event received in the last HOOKYARD_RETENTION).",
    )
    actions = events.add_subparsers(dest="action", metavar="<action>", required=True)

    listing = actions.add_parser(
        "list",
        help="received events, newest first (or followed as they arrive)",
        description=(
            "Received events, newest first, from every shard's event index. Filters combine: all must match. "
            "With --follow, the last --limit events oldest first, then every new one as it is indexed, until "
            "Ctrl-C (as tail -f)."
        ),
    )
    listing.add_argument("--type", metavar="T", help="event type, or a glob such as 'dsync.user.*'")
    listing.add_argument("--source", type=source_name, help="only events of this sender")
    listing.add_argument(
        "--resource",
        metavar="ID",
        help="only events about this object: its data's id, a nested object's id (a membership's user or group), "
        "or a *_id field (directory_id, organization_id)",
    )
    listing.add_argument("--handler", metavar="H", help="only events routed to this handler")
    listing.add_argument(
        "--status",
        choices=_STATUSES,
        help="only events with this status with --handler (or with any of their handlers); not with --follow",
    )
    listing.add_argument("--since", type=time_bound, metavar="T", help="received at or after T (ISO-8601, or 2h, 7d)")
    listing.add_argument("--until", type=time_bound, metavar="T", help="received at or before T")
    listing.add_argument("--limit", type=positive_int, default=20, metavar="N", help="at most N events (default 20)")
    listing.add_argument("-f", "--follow", action="store_true", help="then print new events as they arrive")
    listing.add_argument(
        "--json", action="store_true", help="print one JSON document (with --follow: one JSON object per line)"
    )
    listing.set_defaults(run=_list, parser=listing)

    show = actions.add_parser(
        "show",
        help="one event: envelope, times and status per handler",
        description=(
            "Show one archived event: its envelope, when it was issued, signed and received, and for each "
            "handler it was routed to its ordering key, pair and status: pending (attempts, next try, last "
            "failure), running, dead (with the error), skipped (late), done, or unknown (the handler's module "
            "cannot be loaded here)."
        ),
    )
    show.add_argument("event_id", metavar="ID", help="the event id (the envelope's id)")
    show.add_argument("--source", type=source_name, help="the sender (default: look in every configured source)")
    show.add_argument("--raw", action="store_true", help="print only the exact bytes received")
    show.add_argument("--json", action="store_true", help="print one JSON document")
    show.set_defaults(run=_show)

    add_resend_parser(actions)


# --- list -----------------------------------------------------------------------------------------------------


def _list(args: argparse.Namespace, environ: dict[str, str]) -> int:
    if args.follow and args.status:
        args.parser.error("--status is not known when an event arrives: it cannot be followed")
    settings = settings_for_redis(environ)
    now_ms = wall_ms()
    since = args.since.resolve(now_ms) if args.since else None
    until = args.until.resolve(now_ms) if args.until else None
    wanted = EventFilter(args.source, args.type, args.resource, args.handler, args.status)
    with connect(settings) as client:
        status_of = event_lookup.status_lookup(client, settings, now_ms) if args.status else None
        rows = newest(client, wanted, since=since, until=until, limit=args.limit, status_of=status_of)
        if args.follow:
            return _follow(client, wanted, rows, args)
    if args.json:
        print_json({"events": [_row_json(row) for row in rows]})
        return 0
    if not rows:
        say("no events")
        return 0
    table = [
        (
            iso(row.received_ms),
            age((now_ms - row.received_ms) / 1000),
            row.fields.get("type"),
            row.event_id,
            row.source,
            iso(_int(row.fields.get("issued"))),
            row.fields.get("targets") or "(none)",
        )
        for row in rows
    ]
    say(render_table(("RECEIVED", "AGE", "TYPE", "EVENT ID", "SOURCE", "ISSUED", "HANDLERS"), table, right=(1,)))
    return 0


def _follow(client: redis.Redis, wanted: EventFilter, rows: list[IndexedEvent], args: argparse.Namespace) -> int:
    # As `tail -f`: the last --limit events oldest first, then each new one as it is indexed, until Ctrl-C.
    if not args.json:
        say(_FOLLOW_LINE.format("RECEIVED", "TYPE", "EVENT ID", "SOURCE", "HANDLERS").rstrip())
    try:
        for row in itertools.chain(reversed(rows), follow(client, wanted, clock_ms=wall_ms, pause=_wait_for_more)):
            if args.json:
                print_json(_row_json(row), compact=True)
            else:
                received = iso(row.received_ms)
                handlers = row.fields.get("targets") or "(none)"
                say(_FOLLOW_LINE.format(received, row.fields.get("type"), row.event_id, row.source, handlers))
    except KeyboardInterrupt:
        pass  # the way out of --follow, not a failure
    return 0


def _wait_for_more() -> None:
    time.sleep(_FOLLOW_POLL_S)


def _row_json(row: IndexedEvent) -> dict[str, Any]:
    document: dict[str, Any] = {
        "source": row.source,
        "event_id": row.event_id,
        "type": row.fields.get("type"),
        "received_at": iso(row.received_ms),
        "issued_at": iso(_int(row.fields.get("issued"))),
        "signed_at": iso(_int(row.fields.get("signed"))),
        "handlers": row.handlers,
    }
    if row.statuses is not None:
        document["statuses"] = row.statuses
    return document


# --- show -----------------------------------------------------------------------------------------------------


def _show(args: argparse.Namespace, environ: dict[str, str]) -> int:
    settings = settings_for_redis(environ)
    sources = [args.source] if args.source else sorted({DEFAULT_SOURCE, *settings.sources})
    now_ms = wall_ms()
    with connect(settings) as client:
        found = event_lookup.find_event(client, sources, args.event_id)
        if args.raw:
            sys.stdout.buffer.write(found.raw)
            sys.stdout.buffer.flush()
            return 0
        registry = event_lookup.registry_or_none(settings)
        window_ms = StoreTimings.from_settings(settings).window_ms
        statuses = handler_statuses(client, registry or Registry(), found, now_ms, window_ms=window_ms)
    document = event_lookup.event_document(found, statuses, now_ms)
    if args.json:
        print_json(document)
        return 0
    _print_event(document, statuses, now_ms, handlers_loaded=registry is not None)
    return 0


def _print_event(
    document: dict[str, Any], statuses: list[HandlerStatus], now_ms: int, *, handlers_loaded: bool
) -> None:
    age_text = age(document["age_s"]) if document["age_s"] is not None else "?"
    say(f"event     {document['event_id']}  ({document['type']}, {document['bytes']} bytes)")
    say(f"source    {document['source']}")
    say(f"issued    {document['issued_at']}")
    say(f"signed    {document['signed_at']}")
    say(f"received  {document['received_at']}  ({age_text} ago)")
    say("")
    if not statuses:
        say("handlers  none matched this event when it was received")
    else:
        rows = [_status_row(status, now_ms) for status in statuses]
        say(render_table(("HANDLER", "STATUS", "ORDERING KEY", "PAIR", "ATTEMPTS", "DETAIL"), rows, right=(4,)))
        if not handlers_loaded:
            say("(handler modules failed to import here: run `hookyard handlers` to see why)")
    say("")
    say(orjson.dumps(document["envelope"], option=orjson.OPT_INDENT_2).decode())


def _status_row(status: HandlerStatus, now_ms: int) -> tuple[object, ...]:
    state, record = status.state, status.record
    detail = ""
    attempts: object = None
    if status.status in ("pending", "running") and state is not None:
        attempts = state.attempts
        parts = []
        if status.leased_until_ms:
            parts.append(f"running, lease until {iso(status.leased_until_ms)}")
        elif status.due_at_ms is not None and status.due_at_ms > now_ms:
            parts.append(f"runnable in {age((status.due_at_ms - now_ms) / 1000)}")
        elif status.due_at_ms is not None:
            parts.append(f"runnable for {age((now_ms - status.due_at_ms) / 1000)}: waits its turn or a worker")
        if state.last_failure_ms:
            parts.append(f"last failed {age((now_ms - state.last_failure_ms) / 1000)} ago")
        if state.replay:
            parts.append("replayed")
        detail = ", ".join(parts)
    elif status.status in ("dead", "skipped") and record is not None:
        attempts = record.attempts
        detail = f"{record.error_type}: {record.error_message}"
        if status.status == "dead":
            detail += "  (`hookyard dlq show` for the traceback)"
    elif status.status == "unknown":
        detail = "handler not loaded here: its ordering key cannot be computed"
    return (status.handler, status.status, status.ordering_key, status.pair, attempts, detail)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
