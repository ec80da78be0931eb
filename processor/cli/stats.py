"""`hookyard stats`: how far behind each handler is. Redis says what is pending, dead and skipped (always); the
workers' metrics endpoint, when it answers, adds how fast handlers run, how late events arrive at them, and how
many deliveries were duplicates."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import httpx
import redis

from processor import overview
from processor.cli.arguments import Verbs, duration, positive_int
from processor.cli.context import connect, metrics_url, settings_for_redis
from processor.cli.render import age, print_json, render_table, say, span
from processor.cli.scrape import Reading
from processor.overview import read_metrics
from shared.settings import Settings

__all__ = ["add_parser"]

_DEFAULT_SAMPLE_S = 1.0
_CLEAR_SCREEN = "\x1b[H\x1b[2J"


def add_parser(verbs: Verbs) -> None:
    stats = verbs.add_parser(
        "stats",
        help="backlog per handler, run rate, lag and dedupe",
        description=(
            "Per handler: events pending, age of the oldest, dead letters and skipped late events (from Redis), "
            "plus inbox size, poison messages, workers alive and wake-ups queued in the broker. When the workers' "
            "metrics endpoint answers "
            "(http://HOOKYARD_HOST:HOOKYARD_WORKER_METRICS_PORT/metrics), also runs per second (between two "
            "scrapes --sample apart), delivery lag p50/p99 (since the workers started), the dedupe ratio and "
            "late events; when it does not, says so and shows what Redis knows."
        ),
    )
    stats.add_argument("--json", action="store_true", help="print one JSON document (one per line with --watch)")
    stats.add_argument("--watch", type=duration, metavar="S", help="refresh every S (e.g. 2, 5s) until Ctrl-C")
    stats.add_argument("--count", type=positive_int, metavar="N", help="with --watch: stop after N refreshes")
    stats.add_argument(
        "--sample",
        type=duration,
        default=_DEFAULT_SAMPLE_S,
        metavar="S",
        help=f"without --watch: time between the two scrapes the rate comes from (default {_DEFAULT_SAMPLE_S:g}s; "
        "0: no rate)",
    )
    stats.add_argument("--metrics-url", metavar="URL", help="the workers' metrics endpoint, if not the default")
    stats.set_defaults(run=_run, parser=stats)


def _run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    if args.count is not None and args.watch is None:
        args.parser.error("--count needs --watch")
    if args.watch is not None and args.watch <= 0:
        args.parser.error("--watch needs a positive interval")
    settings = settings_for_redis(environ)
    url = args.metrics_url or (
        metrics_url(settings.host, settings.worker_metrics_port) if settings.worker_metrics_port else None
    )
    with connect(settings) as client, httpx.Client() as http:
        if args.watch is None:
            first = read_metrics(http, url)
            second = first
            if isinstance(first, Reading) and args.sample > 0:
                time.sleep(args.sample)
                second = read_metrics(http, url)
            _show(overview.document(client, settings, url, first, second), args, clear=False)
            return 0
        return _watch(client, http, settings, url, args)


def _watch(
    client: redis.Redis, http: httpx.Client, settings: Settings, url: str | None, args: argparse.Namespace
) -> int:
    clear = sys.stdout.isatty() and not args.json
    previous = read_metrics(http, url)
    refreshes = 0
    try:
        while args.count is None or refreshes < args.count:
            if refreshes:
                time.sleep(args.watch)
            current = read_metrics(http, url)
            _show(overview.document(client, settings, url, previous, current), args, clear=clear)
            previous = current
            refreshes += 1
    except KeyboardInterrupt:
        pass  # the way out of --watch, not a failure
    return 0


def _show(document: dict[str, Any], args: argparse.Namespace, *, clear: bool) -> None:
    if args.json:
        print_json(document, compact=args.watch is not None)
        return
    if clear:
        sys.stdout.write(_CLEAR_SCREEN)
    metrics = document["metrics"]
    handlers = document["handlers"]
    if handlers:
        headers = ["HANDLER", "PENDING", "OLDEST", "DEAD", "SKIPPED"]
        right = [1, 2, 3, 4]
        if metrics["reachable"]:
            headers += ["RUNS/S", "LAG P50", "LAG P99", "LATE"]
            right += [5, 6, 7, 8]
        rows = []
        for name, entry in handlers.items():
            row: list[object] = [
                name,
                entry["pending"],
                _oldest(entry),
                entry["dead"],
                entry["skipped"],
            ]
            if metrics["reachable"]:
                late = entry["late_delivered"] + entry["late_skipped"]
                row += [_number(entry["runs_per_s"]), age(entry["lag_p50_s"]), age(entry["lag_p99_s"]), late]
            rows.append(row)
        say(render_table(headers, rows, right=right))
    else:
        say("no handler has seen an event yet")
    say("")
    stuck = document["abandoned_threads"]
    say(
        f"inbox {document['inbox']} · poison {document['poison']} · workers alive {document['workers_alive']}"
        + (f" · {stuck} threads stuck in timed-out calls" if stuck else "")
        + f" · at {document['at']}"
    )
    broker = document["broker"]
    if broker["reachable"]:
        say(f"wake-ups queued {broker['wakeups_queued']} ({broker['kind']} at {broker['url']})")
    else:
        say(
            f"wake-up broker unreachable ({broker['kind']} at {broker['url']}: {broker['error']}): "
            "handlers run again once it answers, nothing is lost"
        )
    if any(entry["held_by_window"] for entry in handlers.values()):
        window = span(document["reorder_window_s"])
        say(
            f"held (window): younger than the hold-back window (HOOKYARD_REORDER_WINDOW={window}); ordered handlers "
            "wait that long for earlier events before they run one"
        )
    missed = document["missed_by_webhook"]
    if missed["events"] or missed["cursor_after"] or missed["cursor_lag_s"] is not None:
        counts = ", ".join(f"{n} {source}" for source, n in sorted(missed["events"].items())) or "none"
        lag = missed["cursor_lag_s"]
        say(
            f"missed by webhooks (first arrived through the Events API): {counts}"
            + (f" · latest {', '.join(missed['recent'][:3])}" if missed["recent"] else "")
            + (f" · reconcile cursor {age(lag)} behind" if lag is not None else "")
        )
    expired = {name: entry["expired"] for name, entry in document["handlers"].items() if entry["expired"]}
    for name, counts in sorted(expired.items()):
        dropped = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
        say(f"{name}: {dropped} dropped unreplayed (letter retention or limit)")
    if not metrics["reachable"]:
        where = f" at {metrics['url']}" if metrics["url"] else ""
        say(f"worker metrics not reachable{where} ({metrics['error']}): showing what Redis knows")
        return
    dedupe = metrics["dedupe_ratio"]
    seen = metrics["ingested_new"] + metrics["ingested_duplicate"]
    say(
        f"worker metrics {metrics['url']}: {_number(metrics['runs_per_s'])} runs/s"
        f" · lag p50 {age(metrics['lag_p50_s'])}, p99 {age(metrics['lag_p99_s'])}"
        f" · dedupe {'-' if dedupe is None else f'{dedupe:.1%}'}"
        f" ({metrics['ingested_duplicate']} duplicates of {seen} ingested)"
        f" · late {metrics['late_delivered']} delivered, {metrics['late_skipped']} skipped"
    )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _oldest(entry: dict[str, Any]) -> str | None:
    shown = age(entry["oldest_pending_age_s"])
    return f"{shown} held (window)" if entry["held_by_window"] else shown
