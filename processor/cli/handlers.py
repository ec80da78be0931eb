"""`hookyard handlers`: which handlers the running workers loaded — each worker publishes its set with its
heartbeat — with their patterns, options, origin and version, flagging workers that disagree (a rolling deploy).
With no live worker (or `--local`), which handlers a worker started here would load."""

from __future__ import annotations

import argparse
from typing import Any

from processor.cli.arguments import Verbs
from processor.cli.context import connect, load_registry, settings_maybe_redis
from processor.cli.handler_sets import LiveHandlers, read_live_handlers
from processor.cli.render import print_json, render_table, say, span
from processor.stats import describe_handler
from shared.clock import wall_ms
from shared.errors import StoreUnavailable
from shared.settings import Settings

__all__ = ["add_parser"]

_HEADERS = ("HANDLER", "PATTERNS", "ORDER BY", "LATE", "ATTEMPTS", "BACKOFF", "ORIGIN", "VERSION")


def add_parser(verbs: Verbs) -> None:
    parser = verbs.add_parser(
        "handlers",
        help="list the handlers the workers run, their options and origin",
        description=(
            "List the handlers the live workers loaded (each publishes its set with its heartbeat) with their "
            "event patterns, options, origin and version; when workers loaded different sets (a rolling deploy), "
            "say so and show which worker runs what. With no live worker, no Redis (REDIS_URL), or --local: "
            "import the handler modules as a worker started here would (the built-in event logger when "
            "HOOKYARD_LOG_EVENTS is on, packaged plugins of the hookyard.handlers entry point group, then "
            "HOOKYARD_HANDLERS) and list those. Exits 1 if a module fails to import."
        ),
    )
    parser.add_argument(
        "--local", action="store_true", help="what a worker started here would load; do not ask the live workers"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    settings, has_redis = settings_maybe_redis(environ)
    if args.local or not has_redis:
        why = "--local" if args.local else "no Redis configured (REDIS_URL)"
        return _show_local(args, settings, why)
    try:
        with connect(settings) as client:
            live = read_live_handlers(client, wall_ms())
    except StoreUnavailable as exc:
        raise StoreUnavailable(f"{exc} (`hookyard handlers --local` lists what this process would load)") from None
    if not live.sets:
        why = "no live worker" if not live.silent else "the live workers do not publish their handlers"
        return _show_local(args, settings, why)
    _show_live(args, live)
    return 0


def _show_local(args: argparse.Namespace, settings: Settings, why: str) -> int:
    registry = load_registry(settings)
    handlers = [describe_handler(spec) for spec in sorted(registry, key=lambda spec: spec.name)]
    if args.json:
        entries = [{**handler, "workers": []} for handler in handlers]
        print_json({"from": "this process", "agree": True, "sets": [], "silent": [], "handlers": entries})
        return 0
    if not handlers:
        say(
            "no handlers registered: set HOOKYARD_HANDLERS, install a plugin (entry point group hookyard.handlers) "
            "or turn on HOOKYARD_LOG_EVENTS"
        )
        return 0
    say(render_table(_HEADERS, [_row(handler) for handler in handlers], right=(4,)))
    say("")
    say(f"{why}: what a worker started here would load")
    return 0


def _show_live(args: argparse.Namespace, live: LiveHandlers) -> None:
    variants = live.variants()
    if args.json:
        print_json(
            {
                "from": "workers",
                "agree": live.agree,
                "sets": [{"label": s.label, "workers": list(s.workers), "hookyard": s.hookyard} for s in live.sets],
                "silent": list(live.silent),
                "handlers": [{**handler, "workers": live.workers_of(labels)} for handler, labels in variants],
            }
        )
        return
    every = tuple(s.label for s in live.sets)
    if live.agree:
        say(render_table(_HEADERS, [_row(handler) for handler, _ in variants], right=(4,)))
    else:
        rows = [
            (*_row(handler), handler.get("code"), "all" if labels == every else " ".join(labels))
            for handler, labels in variants
        ]
        say(f"the live workers disagree (a rolling deploy?): {_sets_count(live)} among {live.workers} workers")
        say(render_table((*_HEADERS, "CODE", "SETS"), rows, right=(4,)))
    say("")
    for handler_set in live.sets:
        prefix = "" if live.agree else f"{handler_set.label}: "
        say(f"{prefix}loaded by {_workers(handler_set.workers, handler_set.hookyard)}")
    if live.silent:
        say(f"?: {_workers(live.silent, None)}, which publish no handler set (a Hookyard from before they did)")


def _row(handler: dict[str, Any]) -> tuple[object, ...]:
    low, high = span(handler["min_backoff_s"]), span(handler["max_backoff_s"])
    return (
        handler["name"],
        " ".join(handler["patterns"]),
        handler["order_by"],
        handler["late"],
        handler["max_attempts"],
        low if low == high else f"{low}..{high}",
        handler.get("origin") or "imported before discovery",
        handler.get("version"),
    )


def _sets_count(live: LiveHandlers) -> str:
    count = len(live.sets) + (1 if live.silent else 0)
    return f"{count} handler sets"


def _workers(workers: tuple[str, ...], hookyard: str | None) -> str:
    count = f"{len(workers)} live worker{'s' if len(workers) != 1 else ''}"
    version = f" on Hookyard {hookyard}" if hookyard else ""
    return f"{count}{version} ({', '.join(workers)})"
