"""`hookyard events list|show`: the archive of received events (kept `HOOKYARD_RETENTION`), newest first, and
one event in full — its envelope, its times, and where it stands with every handler it was routed to."""

from __future__ import annotations

import argparse
import fnmatch
import heapq
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import orjson
import redis

from processor.cli.arguments import Verbs, positive_int, source_name, time_bound
from processor.cli.context import connect, load_registry, settings_for_redis
from processor.cli.event_status import HandlerStatus, handler_statuses
from processor.cli.render import age, iso, print_json, render_table, say
from processor.handlers import Registry
from processor.records import ArchivedEvent
from shared import keys
from shared.errors import HookyardError, RegistrationError
from shared.settings import DEFAULT_SOURCE, Settings

__all__ = ["add_parser"]

_FIELDS = ("source", "type", "received", "issued", "signed", "targets")
_PAGE = 200


def add_parser(verbs: Verbs) -> None:
    events = verbs.add_parser(
        "events",
        help="list received events, or show one in full",
        description="Look into the event archive (every event received in the last HOOKYARD_RETENTION).",
    )
    actions = events.add_subparsers(dest="action", metavar="<action>", required=True)

    listing = actions.add_parser(
        "list",
        help="received events, newest first",
        description="Received events, newest first, from every shard's event index.",
    )
    listing.add_argument("--type", metavar="T", help="event type, or a glob such as 'dsync.user.*'")
    listing.add_argument("--source", type=source_name, help="only events of this sender")
    listing.add_argument("--since", type=time_bound, metavar="T", help="received at or after T (ISO-8601, or 2h, 7d)")
    listing.add_argument("--until", type=time_bound, metavar="T", help="received at or before T")
    listing.add_argument("--limit", type=positive_int, default=20, metavar="N", help="at most N events (default 20)")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    listing.set_defaults(run=_list)

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


# --- list -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Row:
    source: str
    event_id: str
    received_ms: int
    fields: dict[str, str]


def _list(args: argparse.Namespace, environ: dict[str, str]) -> int:
    settings = settings_for_redis(environ)
    now_ms = int(time.time() * 1000)
    since = args.since.resolve(now_ms) if args.since else None
    until = args.until.resolve(now_ms) if args.until else None
    with connect(settings) as client:
        rows = _newest(client, since=since, until=until, source=args.source, type_glob=args.type, limit=args.limit)
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


def _newest(
    client: redis.Redis,
    *,
    since: int | None,
    until: int | None,
    source: str | None,
    type_glob: str | None,
    limit: int,
) -> list[_Row]:
    rows: list[_Row] = []
    # Index pages are read by offset while the receiver may add events at the top: an event can come round twice.
    seen: set[str] = set()
    candidates = _merged_index(client, since, until)
    while len(rows) < limit:
        batch = []
        for source_and_id, received in candidates:
            if source_and_id in seen:
                continue
            seen.add(source_and_id)
            member_source, _, event_id = source_and_id.partition(":")
            if source is None or member_source == source:
                batch.append((member_source, event_id, received))
            if len(batch) >= _PAGE:
                break
        if not batch:
            break
        pipe = client.pipeline(transaction=False)
        for member_source, event_id, _ in batch:
            pipe.hmget(keys.event_keys(member_source, event_id).archive, _FIELDS)
        for (member_source, event_id, received), values in zip(batch, pipe.execute(), strict=True):
            if values[0] is None:
                continue  # past retention: the archive entry expired before the index was trimmed
            fields = {name: value.decode() for name, value in zip(_FIELDS, values, strict=True) if value is not None}
            if type_glob is not None and not fnmatch.fnmatchcase(fields.get("type", ""), type_glob):
                continue
            rows.append(_Row(member_source, event_id, received, fields))
            if len(rows) >= limit:
                break
    return rows


def _merged_index(client: redis.Redis, since: int | None, until: int | None) -> Iterator[tuple[str, int]]:
    """Every shard's event index merged newest first, read a page per shard at a time."""
    low = "-inf" if since is None else since
    high = "+inf" if until is None else until
    offsets = dict.fromkeys(range(keys.SHARDS), 0)

    def page(shard: int) -> list[tuple[bytes, float]]:
        # The index key depends on the shard alone; shared/keys.py names it only through EventKeys.
        index = keys.EventKeys(shard, "", "").index
        found = cast(
            list[tuple[bytes, float]],
            client.zrevrangebyscore(index, high, low, start=offsets[shard], num=_PAGE, withscores=True),
        )
        offsets[shard] += len(found)
        return found

    # Ties (one millisecond) come out as ZREVRANGEBYSCORE gives them within a shard: the greater member first.
    heap: list[tuple[float, _Descending, int]] = []
    buffers: dict[int, list[tuple[bytes, float]]] = {}
    for shard in range(keys.SHARDS):
        buffers[shard] = page(shard)[::-1]  # popped from the end: newest last
        if buffers[shard]:
            first, score = buffers[shard].pop()
            heapq.heappush(heap, (-score, _Descending(first.decode()), shard))
    while heap:
        negative_score, member, shard = heapq.heappop(heap)
        yield member.text, int(-negative_score)
        if not buffers[shard] and offsets[shard] % _PAGE == 0 and offsets[shard]:
            buffers[shard] = page(shard)[::-1]
        if buffers[shard]:
            next_member, score = buffers[shard].pop()
            heapq.heappush(heap, (-score, _Descending(next_member.decode()), shard))


@dataclass(frozen=True, slots=True)
class _Descending:
    """A string that sorts backwards, for a min-heap that must yield the greater one first."""

    text: str

    def __lt__(self, other: _Descending) -> bool:
        return self.text > other.text


def _row_json(row: _Row) -> dict[str, Any]:
    return {
        "source": row.source,
        "event_id": row.event_id,
        "type": row.fields.get("type"),
        "received_at": iso(row.received_ms),
        "issued_at": iso(_int(row.fields.get("issued"))),
        "signed_at": iso(_int(row.fields.get("signed"))),
        "handlers": [name for name in row.fields.get("targets", "").split(",") if name],
    }


# --- show -----------------------------------------------------------------------------------------------------


def _show(args: argparse.Namespace, environ: dict[str, str]) -> int:
    settings = settings_for_redis(environ)
    sources = [args.source] if args.source else sorted({DEFAULT_SOURCE, *settings.sources})
    now_ms = int(time.time() * 1000)
    with connect(settings) as client:
        found = _find(client, sources, args.event_id)
        if args.raw:
            sys.stdout.buffer.write(found.raw)
            sys.stdout.buffer.flush()
            return 0
        registry = _registry_or_none(settings)
        window_ms = int(settings.reorder_window_s * 1000)
        statuses = handler_statuses(client, registry or Registry(), found, now_ms, window_ms=window_ms)
    document = _event_json(found, statuses, now_ms)
    if args.json:
        print_json(document)
        return 0
    _print_event(document, statuses, now_ms, handlers_loaded=registry is not None)
    return 0


def _find(client: redis.Redis, sources: list[str], event_id: str) -> ArchivedEvent:
    pipe = client.pipeline(transaction=False)
    for source in sources:
        pipe.hgetall(keys.event_keys(source, event_id).archive)
    hits = [ArchivedEvent.decode(event_id, entry) for entry in pipe.execute() if entry]
    if not hits:
        raise HookyardError(
            f"no event {event_id!r} in the archive of {', '.join(sources)}; it may be past HOOKYARD_RETENTION"
        )
    if len(hits) > 1:
        found_in = ", ".join(hit.source for hit in hits)
        raise HookyardError(f"event {event_id!r} was received from several sources ({found_in}): pass --source")
    return hits[0]


def _registry_or_none(settings: Settings) -> Registry | None:
    # A handler module that fails to import here must not hide the event: its handlers show as "unknown".
    try:
        return load_registry(settings)
    except RegistrationError:
        return None


def _event_json(archived: ArchivedEvent, statuses: list[HandlerStatus], now_ms: int) -> dict[str, Any]:
    raw = archived.raw
    try:
        envelope: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        envelope = raw.decode(errors="replace")
    received = archived.received_at_ms or None
    return {
        "event_id": archived.event_id,
        "source": archived.source,
        "type": archived.event_type,
        "issued_at": iso(archived.issued_at_ms or None),
        "signed_at": iso(archived.signed_at_ms or None),
        "received_at": iso(received),
        "age_s": (now_ms - received) / 1000 if received else None,
        "bytes": len(raw),
        "handlers": [_status_json(status) for status in statuses],
        "envelope": envelope,
    }


def _status_json(status: HandlerStatus) -> dict[str, Any]:
    state = status.state
    record = status.record
    return {
        "handler": status.handler,
        "status": status.status,
        "ordering_key": status.ordering_key,
        "pair": status.pair,
        "shard": status.shard,
        "attempts": state.attempts if state else (record.attempts if record else None),
        "not_before": iso(state.not_before_ms) if state else None,
        "runnable_at": iso(status.due_at_ms),
        "first_failure": iso(state.first_failure_ms if state else (record.first_failure_ms if record else None)),
        "last_failure": iso(state.last_failure_ms if state else (record.last_failure_ms if record else None)),
        "replay": state.replay if state else None,
        "leased_until": iso(status.leased_until_ms),
        "set_aside_at": iso(status.letter_at_ms),
        "error": ({"type": record.error_type, "message": record.error_message} if record else None),
    }


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
