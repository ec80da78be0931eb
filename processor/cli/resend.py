"""`hookyard events resend`: run one handler again on events it already completed — a redrive after a bug that
did not raise. Each event goes back into the handler's queue at its issued position, in key order and without the
hold-back window, marked as a replay: its `event.attempt` goes on counting above the attempt that completed."""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from typing import Any

import redis

from processor.cli.arguments import Verbs, positive_int, source_name, time_bound
from processor.cli.context import connect, load_registry, open_store, settings_for_redis
from processor.cli.event_index import EventFilter, newest
from processor.cli.event_status import handler_statuses
from processor.cli.render import Progress, iso, print_json, render_table, say, warn
from processor.handlers import Registry
from processor.records import ArchivedEvent, StoreTimings
from processor.routing import Target
from processor.store import Store
from shared import keys
from shared.clock import wall_ms
from shared.errors import RegistrationError
from shared.settings import DEFAULT_SOURCE, Settings

__all__ = ["add_parser"]

_DEFAULT_LIMIT = 1000

# Why an event selected for a resend is left alone, as said to the operator.
_WHY_NOT = {
    "expired": "past HOOKYARD_RETENTION: its bytes are gone, it cannot be resent",
    "not_routed": "not routed to this handler",
    "pending": "not completed yet (pending or running)",
    "running": "not completed yet (pending or running)",
    "dead": "a dead letter: `hookyard dlq replay` runs it again",
    "skipped": "skipped as late: `hookyard dlq replay --skipped` runs it",
    "unknown": "its ordering key cannot be computed here (the handler's module does not load)",
}


@dataclass(frozen=True, slots=True)
class _Choice:
    source: str
    event_id: str
    archived: ArchivedEvent | None = None
    target: Target | None = None
    #: 'done' when it can be resent, else a key of _WHY_NOT.
    status: str = "expired"


def add_parser(actions: Verbs) -> None:
    resend = actions.add_parser(
        "resend",
        help="run one handler again on events it completed (a redrive)",
        description=(
            "Run HANDLER again on events it already completed, after a bug that did not raise. Each goes back "
            "into the handler's queue at its issued position (in key order, without the hold-back window), "
            "marked as a replay: event.attempt goes on counting above the attempt that completed. Only events "
            "still in the archive (HOOKYARD_RETENTION) can be resent; pending events and dead or skipped "
            "letters are left alone (`hookyard dlq replay` is for letters). Select by IDs, or by --type, "
            "--resource and --since/--until (all must match)."
        ),
    )
    resend.add_argument("event_ids", nargs="*", metavar="ID", help="these events (envelope ids)")
    resend.add_argument("--handler", required=True, metavar="H", help="the handler to run again (required)")
    resend.add_argument("--type", metavar="T", help="event type, or a glob such as 'dsync.user.*'")
    resend.add_argument("--resource", metavar="ID", help="only events about this object (as `events list`)")
    resend.add_argument("--source", type=source_name, help="only events of this sender")
    resend.add_argument("--since", type=time_bound, metavar="T", help="received at or after T (ISO-8601, or 2h, 7d)")
    resend.add_argument("--until", type=time_bound, metavar="T", help="received at or before T")
    resend.add_argument(
        "--limit",
        type=positive_int,
        default=_DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N of the newest matching events (default {_DEFAULT_LIMIT})",
    )
    resend.add_argument("--dry-run", action="store_true", help="show what would be resent; change nothing")
    resend.add_argument("--json", action="store_true", help="print one JSON document")
    resend.set_defaults(run=_resend, parser=resend)


def _resend(args: argparse.Namespace, environ: dict[str, str]) -> int:
    if not (args.event_ids or args.type or args.resource or args.since or args.until):
        args.parser.error("choose what to resend: event IDs, --type, --resource or --since/--until")
    settings = settings_for_redis(environ)
    now_ms = wall_ms()
    resent: list[_Choice] = []
    with connect(settings) as client:
        choices = _classify(client, settings, args, _select(client, settings, args, now_ms), now_ms)
        chosen = sorted(
            (c for c in choices if c.status == "done"),
            # Issued order: within one key the earlier event must be back in the queue first, or a worker could
            # run the later one before the earlier one arrives.
            key=lambda c: (c.archived.issued_at_ms if c.archived else 0, c.event_id),
        )
        if not args.dry_run:
            resent = _queue_again(open_store(client, settings), chosen)
    left = [c for c in choices if c.status != "done"] + [c for c in chosen if c not in resent and not args.dry_run]
    if args.json:
        print_json(_json(args, choices, chosen, resent, left))
    else:
        _report(args, settings, chosen, resent, left)
    return 1 if any(c.status == "expired" for c in left) else 0


def _select(client: redis.Redis, settings: Settings, args: argparse.Namespace, now_ms: int) -> list[_Choice]:
    since = args.since.resolve(now_ms) if args.since else None
    until = args.until.resolve(now_ms) if args.until else None
    wanted = EventFilter(args.source, args.type, args.resource)
    if not args.event_ids:
        rows = newest(client, wanted, since=since, until=until, limit=args.limit)
        return [_Choice(row.source, row.event_id) for row in rows]
    sources = [args.source] if args.source else sorted({DEFAULT_SOURCE, *settings.sources})
    found: list[_Choice] = []
    for event_id in dict.fromkeys(args.event_ids):
        pipe = client.pipeline(transaction=False)
        for source in sources:
            pipe.hgetall(keys.event_keys(source, event_id).archive)
        hits = [ArchivedEvent.decode(event_id, entry) for entry in pipe.execute() if entry]
        if not hits:
            found.append(_Choice(args.source or DEFAULT_SOURCE, event_id))
        for hit in hits:
            if _within(hit, wanted, since, until):
                found.append(_Choice(hit.source, event_id, hit))
    return found


def _within(archived: ArchivedEvent, wanted: EventFilter, since: int | None, until: int | None) -> bool:
    fields = {"type": archived.event_type, "targets": ",".join(archived.handlers)}
    if not wanted.matches_fields(archived.source, fields) or not wanted.matches_archive(archived, None):
        return False
    return (since is None or archived.received_at_ms >= since) and (until is None or archived.received_at_ms <= until)


def _classify(
    client: redis.Redis, settings: Settings, args: argparse.Namespace, selected: list[_Choice], now_ms: int
) -> list[_Choice]:
    registry = _registry_or_empty(settings)
    window_ms = StoreTimings.from_settings(settings).window_ms
    out: list[_Choice] = []
    for choice in selected:
        archived = choice.archived
        if archived is None:
            archived = open_store(client, settings).archive.get(choice.source, choice.event_id)
        if archived is None:
            out.append(_Choice(choice.source, choice.event_id))
            continue
        statuses = handler_statuses(client, registry, archived, now_ms, window_ms=window_ms)
        status = next((s for s in statuses if s.handler == args.handler), None)
        if status is None:
            out.append(_Choice(archived.source, archived.event_id, archived, status="not_routed"))
            continue
        target = status.target()
        known = status.status if target is not None else "unknown"
        out.append(_Choice(archived.source, archived.event_id, archived, target, known))
    return out


def _queue_again(store: Store, chosen: list[_Choice]) -> list[_Choice]:
    resent: list[_Choice] = []
    with Progress(len(chosen), "resending") as progress:
        for choice in chosen:
            assert choice.archived is not None
            assert choice.target is not None
            outcome = store.pairs.resend(choice.target, choice.archived, wall_ms())
            # Anything else: a worker or an operator got there since it was classified (it is pending again,
            # or became a letter); it is reported with the others left alone.
            if outcome == "resent":
                resent.append(choice)
            progress.advance()
    return resent


def _registry_or_empty(settings: Settings) -> Registry:
    # Needed only for events archived before routes were recorded; a module that fails to import here must not
    # stop the resend of the others.
    try:
        return load_registry(settings)
    except RegistrationError:
        return Registry()


def _why(choice: _Choice, *, dry_run: bool) -> str:
    if choice.status == "done":
        return "pending or a letter again since it was selected" if not dry_run else ""
    return _WHY_NOT.get(choice.status, choice.status)


def _report(
    args: argparse.Namespace,
    settings: Settings,
    chosen: list[_Choice],
    resent: list[_Choice],
    left: list[_Choice],
) -> None:
    if args.dry_run and chosen:
        rows = [
            (
                c.event_id,
                c.archived.event_type if c.archived else "-",
                iso(c.archived.issued_at_ms if c.archived else None),
                c.target.ordering_key if c.target else "-",
            )
            for c in chosen
        ]
        say(render_table(("EVENT ID", "TYPE", "ISSUED", "ORDERING KEY"), rows))
        say(f"would resend {len(chosen)} events to {args.handler}; dry run, nothing changed")
    elif not args.dry_run:
        line = f"resent {len(resent)} events to {args.handler}"
        if resent:
            line += f"; workers run them within {settings.wake_grace_s:g} s, in key order"
        say(line)
    reasons = Counter(_why(c, dry_run=args.dry_run) for c in left)
    for reason, count in sorted(reasons.items()):
        ids = [c.event_id for c in left if _why(c, dry_run=args.dry_run) == reason]
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        line = f"{count} not resent: {reason} ({shown})"
        if reason == _WHY_NOT["expired"]:
            warn(f"hookyard events resend: {line}")
        else:
            say(line)
    if not chosen and not left:
        say("no events match")


def _json(
    args: argparse.Namespace,
    choices: list[_Choice],
    chosen: list[_Choice],
    resent: list[_Choice],
    left: list[_Choice],
) -> dict[str, Any]:
    return {
        "dry_run": args.dry_run,
        "handler": args.handler,
        "selected": len(choices),
        "resendable": [c.event_id for c in chosen],
        "resent": [c.event_id for c in resent],
        "not_resent": [
            {"event_id": c.event_id, "source": c.source, "reason": _why(c, dry_run=args.dry_run)} for c in left
        ],
    }
