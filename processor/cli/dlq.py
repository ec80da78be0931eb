"""`hookyard dlq list|show|replay|purge`: the events a handler gave up on (dead letters), or with `--skipped` the
late events a `late="skip"` handler set aside — look at them, put them back in their handler's queue, or drop
them for good."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

import redis

from processor import deadletters
from processor.cli.arguments import Verbs, positive_int, time_bound
from processor.cli.context import connect, open_store, settings_for_redis
from processor.cli.render import Progress, age, iso, print_json, render_table, say, warn
from processor.deadletters import Kind, Letter
from processor.records import DeadLetter
from shared.clock import wall_ms
from shared.errors import HookyardError

__all__ = ["add_parser"]

_PURGE_CHUNK = 200
_ERROR_WIDTH = 80


def add_parser(verbs: Verbs) -> None:
    dlq = verbs.add_parser(
        "dlq",
        help="list, show, replay or purge dead letters",
        description=(
            "Dead letters: events a handler failed on max_attempts times, set aside so its key moves on. "
            "With --skipped, the late events a late='skip' handler set aside instead. Times (--since, --until) "
            "are when the event was set aside: ISO-8601, or a duration ago such as 2h or 7d."
        ),
    )
    actions = dlq.add_subparsers(dest="action", metavar="<action>", required=True)

    listing = actions.add_parser("list", help="dead letters, oldest first", description="Dead letters, oldest first.")
    _add_filters(listing, ids=False)
    listing.add_argument("--limit", type=positive_int, default=100, metavar="N", help="at most N (default 100)")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    listing.set_defaults(run=_list)

    show = actions.add_parser(
        "show",
        help="one event's dead letters in full, traceback included",
        description="Every dead letter of event ID (one per handler that gave up on it), with its traceback.",
    )
    show.add_argument("event_id", metavar="ID", help="the event id")
    show.add_argument("--handler", metavar="H", help="only this handler's letter")
    show.add_argument("--skipped", action="store_true", help="a skipped late event instead of a dead letter")
    show.add_argument("--json", action="store_true", help="print one JSON document")
    show.set_defaults(run=_show)

    replay = actions.add_parser(
        "replay",
        help="put dead letters back in their handlers' queues",
        description=(
            "Put the selected letters back in their handler's queue at their issued position, in key order: "
            "only that handler runs each again, without the hold-back window, within the wake grace "
            "(HOOKYARD_RECOVERY_TIMEOUT / 3). Select by event IDs, --handler, --since/--until (combined: all "
            "must match), or --all."
        ),
    )
    _add_filters(replay, ids=True)
    replay.add_argument("--dry-run", action="store_true", help="show what would be replayed; change nothing")
    replay.add_argument("--json", action="store_true", help="print one JSON document")
    replay.set_defaults(run=_replay, parser=replay)

    purge = actions.add_parser(
        "purge",
        help="drop dead letters for good",
        description=(
            "Forget the selected letters for good (the events stay in the archive until retention ends). "
            "Asks for confirmation on a terminal; without one, refuses unless --yes is given."
        ),
    )
    _add_filters(purge, ids=True)
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.add_argument("--dry-run", action="store_true", help="show what would be purged; change nothing")
    purge.add_argument("--json", action="store_true", help="print one JSON document")
    purge.set_defaults(run=_purge, parser=purge)


def _add_filters(parser: argparse.ArgumentParser, *, ids: bool) -> None:
    if ids:
        parser.add_argument("event_ids", nargs="*", metavar="ID", help="event ids to select")
        parser.add_argument("--all", action="store_true", help="select every letter")
    parser.add_argument("--handler", metavar="H", help="only this handler's letters")
    parser.add_argument("--since", type=time_bound, metavar="T", help="set aside at or after T (ISO-8601, 2h, 7d)")
    parser.add_argument("--until", type=time_bound, metavar="T", help="set aside at or before T")
    parser.add_argument("--skipped", action="store_true", help="skipped late events instead of dead letters")


def _kind(args: argparse.Namespace) -> Kind:
    return "skipped" if args.skipped else "dead"


def _noun(args: argparse.Namespace, count: int) -> str:
    if args.skipped:
        return "skipped late event" + ("" if count == 1 else "s")
    return "dead letter" + ("" if count == 1 else "s")


def _select(client: redis.Redis, args: argparse.Namespace, now_ms: int) -> list[Letter]:
    ids = getattr(args, "event_ids", None)
    return deadletters.list_letters(
        client,
        _kind(args),
        handler=args.handler,
        since_ms=args.since.resolve(now_ms) if args.since else None,
        until_ms=args.until.resolve(now_ms) if args.until else None,
        event_ids=set(ids) if ids else None,
    )


def _require_selection(args: argparse.Namespace, verb: str) -> None:
    chosen = bool(args.event_ids or args.handler or args.since or args.until)
    if args.all and chosen:
        args.parser.error("--all selects every letter: give it alone, or select with IDs/--handler/--since/--until")
    if not args.all and not chosen:
        args.parser.error(f"choose what to {verb}: event IDs, --handler, --since/--until, or --all")


# --- list / show ----------------------------------------------------------------------------------------------


def _list(args: argparse.Namespace, environ: dict[str, str]) -> int:
    settings = settings_for_redis(environ)
    now_ms = wall_ms()
    with connect(settings) as client:
        letters = _select(client, args, now_ms)
    shown = letters[: args.limit]
    if args.json:
        print_json(
            {"kind": _kind(args), "total": len(letters), "letters": [deadletters.letter_document(x) for x in shown]}
        )
        return 0
    if not letters:
        say(f"no {_noun(args, 0)}")
        return 0
    rows = [
        (
            iso(letter.at_ms),
            age((now_ms - letter.at_ms) / 1000),
            letter.handler,
            letter.event_id,
            letter.record.event_type or "-",
            letter.record.attempts,
            _short_error(letter.record),
        )
        for letter in shown
    ]
    when = "SKIPPED" if args.skipped else "DIED"
    say(render_table((when, "AGE", "HANDLER", "EVENT ID", "TYPE", "ATTEMPTS", "ERROR"), rows, right=(1, 5)))
    if len(letters) > len(shown):
        say(f"... and {len(letters) - len(shown)} more (--limit)")
    return 0


def _show(args: argparse.Namespace, environ: dict[str, str]) -> int:
    settings = settings_for_redis(environ)
    now_ms = wall_ms()
    with connect(settings) as client:
        letters = deadletters.list_letters(client, _kind(args), handler=args.handler, event_ids={args.event_id})
    if not letters:
        whose = f" of handler {args.handler!r}" if args.handler else ""
        raise HookyardError(f"no {_noun(args, 1)} for event {args.event_id!r}{whose}")
    if args.json:
        print_json({"letters": [deadletters.letter_document(letter, full=True) for letter in letters]})
        return 0
    for i, letter in enumerate(letters):
        if i:
            say("")
        _print_letter(letter, now_ms)
    return 0


def _print_letter(letter: Letter, now_ms: int) -> None:
    record = letter.record
    set_aside = "skipped" if letter.kind == "skipped" else "died"
    say(f"{letter.kind} letter of {letter.handler}: event {letter.event_id}")
    say(f"type          {record.event_type or '-'}  (source {record.source})")
    say(f"{set_aside.ljust(14)}{iso(letter.at_ms)}  ({age((now_ms - letter.at_ms) / 1000)} ago)")
    say(f"issued        {iso(record.issued_at_ms)}")
    say(
        f"attempts      {record.attempts}  (first failure {iso(record.first_failure_ms)}, "
        f"last {iso(record.last_failure_ms)})"
    )
    say(f"ordering key  {record.ordering_key}  (pair {record.pair}, shard {letter.shard})")
    say(f"error         {record.error_type}: {record.error_message}")
    trace = str(record.traceback or "").rstrip()
    if trace:
        say("traceback")
        for line in trace.splitlines():
            say("  " + line)


# --- replay / purge -------------------------------------------------------------------------------------------


def _replay(args: argparse.Namespace, environ: dict[str, str]) -> int:
    _require_selection(args, "replay")
    settings = settings_for_redis(environ)
    now_ms = wall_ms()
    replayed: list[Letter] = []
    gone = expired = 0
    with connect(settings) as client:
        letters = _select(client, args, now_ms)
        ordered = sorted(letters, key=lambda x: (x.record.issued_at_ms, x.event_id))
        if not args.dry_run:
            store = open_store(client, settings)
            with Progress(len(ordered), "replaying") as progress:
                for letter, result in deadletters.replay_each(store, ordered, wall_ms):
                    if result == "replayed":
                        replayed.append(letter)
                    elif result == "gone":
                        gone += 1
                    else:
                        expired += 1
                    progress.advance()
    chosen = ordered if args.dry_run else replayed
    if args.json:
        print_json(
            {
                "dry_run": args.dry_run,
                "selected": len(ordered),
                "replayed": 0 if args.dry_run else len(replayed),
                "already_gone": gone,
                "past_retention": expired,
                "by_handler": dict(Counter(letter.handler for letter in chosen)),
                "letters": [deadletters.letter_document(letter) for letter in chosen],
            }
        )
        return 0 if not expired else 1
    if not ordered:
        say(f"no {_noun(args, 0)} match")
        return 0
    if args.dry_run:
        say(_letters_table(ordered, now_ms))
        what = f"{len(ordered)} {_noun(args, len(ordered))} ({_by_handler(ordered)})"
        say(f"would replay {what}; dry run, nothing changed")
        return 0
    line = f"replayed {len(replayed)} {_noun(args, len(replayed))}"
    if replayed:
        line += f" ({_by_handler(replayed)}); workers run them within {settings.wake_grace_s:g} s, in key order"
    say(line)
    if gone:
        say(f"{gone} were no longer there (replayed or purged meanwhile)")
    if expired:
        warn(f"hookyard dlq replay: {expired} could not be replayed: their events are past HOOKYARD_RETENTION")
        return 1
    return 0


def _purge(args: argparse.Namespace, environ: dict[str, str]) -> int:
    _require_selection(args, "purge")
    settings = settings_for_redis(environ)
    now_ms = wall_ms()
    with connect(settings) as client:
        letters = _select(client, args, now_ms)
        if not letters:
            if args.json:
                print_json({"dry_run": args.dry_run, "selected": 0, "purged": 0, "letters": []})
            else:
                say(f"no {_noun(args, 0)} match")
            return 0
        what = f"{len(letters)} {_noun(args, len(letters))} ({_by_handler(letters)})"
        if args.dry_run:
            if args.json:
                print_json(_purge_json(args, letters, 0))
            else:
                say(_letters_table(letters, now_ms))
                say(f"would purge {what}; dry run, nothing changed")
            return 0
        if not args.yes and not _confirm(f"purge {what} for good?"):
            say("nothing purged")
            return 1
        purged = 0
        with Progress(len(letters), "purging") as progress:
            for start in range(0, len(letters), _PURGE_CHUNK):
                chunk = letters[start : start + _PURGE_CHUNK]
                purged += deadletters.purge(client, chunk)
                progress.advance(len(chunk))
    if args.json:
        print_json(_purge_json(args, letters, purged))
    else:
        say(f"purged {purged} {_noun(args, purged)}")
    return 0


def _confirm(question: str) -> bool:
    # Deleting is forever: only a person at a terminal may say yes without --yes, never a pipe or a cron job.
    if not sys.stdin.isatty():
        raise HookyardError(f"refusing to {question.rstrip('?')} without confirmation: not a terminal; pass --yes")
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _purge_json(args: argparse.Namespace, letters: list[Letter], purged: int) -> dict[str, Any]:
    return {
        "dry_run": args.dry_run,
        "selected": len(letters),
        "purged": purged,
        "by_handler": dict(Counter(letter.handler for letter in letters)),
        "letters": [deadletters.letter_document(letter) for letter in letters],
    }


# --- rendering ------------------------------------------------------------------------------------------------


def _letters_table(letters: list[Letter], now_ms: int) -> str:
    rows = [
        (iso(x.at_ms), age((now_ms - x.at_ms) / 1000), x.handler, x.event_id, iso(x.record.issued_at_ms))
        for x in letters
    ]
    return render_table(("SET ASIDE", "AGE", "HANDLER", "EVENT ID", "ISSUED"), rows, right=(1,))


def _by_handler(letters: list[Letter]) -> str:
    counts = Counter(letter.handler for letter in letters)
    return ", ".join(f"{handler}: {count}" for handler, count in sorted(counts.items()))


def _short_error(record: DeadLetter) -> str:
    text = f"{record.error_type}: {' '.join(str(record.error_message).split())}"
    return text if len(text) <= _ERROR_WIDTH else text[: _ERROR_WIDTH - 3] + "..."
