"""`hookyard send`: POST realistic signed WorkOS events (or a file's bytes) to a receiver — one for a demo, many for
load: duplicate deliveries, shuffled order and a fixed rate, sent concurrently."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from processor.cli.arguments import Verbs, positive_int, probability, source_name
from processor.cli.context import settings_without_redis, webhook_url
from processor.cli.devstate import SECRET_FILE, saved_secret
from processor.cli.render import Progress, print_json, say, warn
from processor.cli.sender import FATAL_ERRORS, Delivery, Outcome, send_all
from shared.errors import ConfigError, HookyardError
from shared.samples import EVENT_TYPES, sample_event
from shared.settings import DEFAULT_SOURCE, Settings

__all__ = ["add_parser", "plan_deliveries"]

ALL_TYPES = "all"
_SEND_TIMEOUT_S = 10.0
_DEFAULT_CONCURRENCY = 16


def add_parser(verbs: Verbs) -> None:
    send = verbs.add_parser(
        "send",
        help="POST signed sample events (or a file) to a receiver",
        description=(
            "Build a realistic sample of EVENT_TYPE (or read --file), sign it as WorkOS does "
            "(WorkOS-Signature: t=<ms>, v1=<hmac>) and POST it. EVENT_TYPE 'all' sends every connection and "
            "Directory Sync type. With more than one delivery they go out concurrently and a summary is printed "
            "(one line per delivery with -v). Exits 0 only if every response was 200."
        ),
        epilog="event types: " + ", ".join((*EVENT_TYPES, ALL_TYPES)),
    )
    send.add_argument(
        "event_type",
        nargs="?",
        choices=(*EVENT_TYPES, ALL_TYPES),
        metavar="EVENT_TYPE",
        help="what to send ('all': one of each type per --count)",
    )
    send.add_argument(
        "--file",
        type=Path,
        metavar="F",
        help="send this file's bytes verbatim instead of a sample ('-' for stdin); with --count, resend them",
    )
    send.add_argument(
        "--url", help="receiver URL (default http://HOOKYARD_HOST:HOOKYARD_PORT/webhooks/SOURCE: 127.0.0.1:8000)"
    )
    send.add_argument(
        "--secret",
        help="signing secret (default: the source's configured secret, e.g. WORKOS_WEBHOOK_SECRET, "
        "else the one `hookyard dev` saved in the data directory)",
    )
    send.add_argument("--source", default=DEFAULT_SOURCE, type=source_name, help="sender name (default workos)")
    send.add_argument(
        "--count", type=positive_int, default=1, metavar="N", help="events to send, each a new sample (default 1)"
    )
    send.add_argument(
        "--duplicates",
        type=probability,
        default=0.0,
        metavar="P",
        help="also re-send this share of the events (0.3: 30%%): the same bytes, signed afresh, as WorkOS retries",
    )
    send.add_argument("--shuffle", action="store_true", help="send in random order (duplicates included)")
    send.add_argument("--seed", type=int, help="seed for samples, duplicates and --shuffle (reproducible runs)")
    send.add_argument("--rate", type=float, metavar="R", help="at most R deliveries per second (default: no pacing)")
    send.add_argument(
        "--concurrency",
        type=positive_int,
        default=_DEFAULT_CONCURRENCY,
        metavar="C",
        help=f"requests in flight at once (default {_DEFAULT_CONCURRENCY})",
    )
    send.add_argument("-v", "--verbose", action="store_true", help="one line per delivery: status, event id, body")
    send.add_argument("--json", action="store_true", help="print the summary as one JSON document")
    send.set_defaults(run=_run, parser=send)


def _run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    if (args.event_type is None) == (args.file is None):
        args.parser.error("give an EVENT_TYPE or --file, not both")
    if args.rate is not None and args.rate <= 0:
        args.parser.error("--rate must be above 0")
    settings = settings_without_redis(environ)
    url = args.url or webhook_url(settings.host, settings.port, args.source)
    secret = (args.secret or _configured_secret(settings, args.source)).encode()
    rng = random.Random(args.seed)
    if args.file is not None:
        raw = _read_body(args.file)
        bodies = [raw] * args.count
    else:
        types = EVENT_TYPES if args.event_type == ALL_TYPES else (args.event_type,)
        bodies = [orjson.dumps(sample_event(t, rng=rng)) for _ in range(args.count) for t in types]
    deliveries = plan_deliveries(bodies, duplicates=args.duplicates, shuffle=args.shuffle, rng=rng)

    # One delivery is a demo: its answer is the output. Many are load: a summary, and lines only when asked.
    single = len(deliveries) == 1
    lines = (single or args.verbose) and not args.json
    with Progress(0 if lines else len(deliveries), "sending") as progress:

        def report(outcome: Outcome) -> None:
            progress.advance()
            if lines and outcome.status is not None:
                print(f"{outcome.status} {outcome.delivery.event_id} {outcome.text}", flush=True)

        started = time.monotonic()
        outcomes = asyncio.run(
            send_all(
                url,
                secret,
                deliveries,
                concurrency=args.concurrency,
                rate=args.rate,
                timeout_s=_SEND_TIMEOUT_S,
                on_outcome=report,
            )
        )
        elapsed = time.monotonic() - started

    summary = _summary(url, bodies, deliveries, outcomes, elapsed)
    if args.json:
        print_json(summary)
    elif not single:
        say(_summary_line(summary))
    fatal = next((o for o in outcomes if o.error in FATAL_ERRORS), None)
    if fatal is not None:
        if fatal.error == "connect":
            warn(f"hookyard send: cannot connect to {url} — is `make run` running?")
        else:
            warn(f"hookyard send: {url}: {fatal.detail}")
        return 1
    failed = outcomes[0] if single and outcomes and outcomes[0].error is not None else None
    if failed is not None:
        if failed.error == "timeout":
            warn(f"hookyard send: {url} did not answer within {_SEND_TIMEOUT_S:g} s")
        else:
            warn(f"hookyard send: {url}: {failed.detail}")
        return 1
    return 0 if summary["ok"] else 1


def plan_deliveries(bodies: Sequence[bytes], *, duplicates: float, shuffle: bool, rng: random.Random) -> list[Delivery]:
    """Every body once, then a second delivery of `duplicates` of them (chosen by `rng`), shuffled if asked.

    Unshuffled, duplicates come after every first delivery, as a sender's retries would; shuffled, a duplicate
    may even arrive first — the receiver cannot tell which of two identical deliveries is the retry.
    """
    deliveries = [Delivery(body, _event_id(body)) for body in bodies]
    resent = sorted(rng.sample(range(len(bodies)), round(duplicates * len(bodies))))
    deliveries += [Delivery(bodies[i], deliveries[i].event_id, duplicate=True) for i in resent]
    if shuffle:
        rng.shuffle(deliveries)
    return deliveries


def _summary(
    url: str, bodies: Sequence[bytes], deliveries: Sequence[Delivery], outcomes: Sequence[Outcome], elapsed: float
) -> dict[str, Any]:
    statuses = Counter(str(o.status) for o in outcomes if o.status is not None)
    errors = Counter(o.error for o in outcomes if o.error is not None)
    return {
        "url": url,
        "events": len(bodies),
        "duplicates": sum(d.duplicate for d in deliveries),
        "planned": len(deliveries),
        "sent": len(outcomes),
        "seconds": round(elapsed, 3),
        "per_second": round(len(outcomes) / elapsed, 1) if elapsed > 0 else None,
        "statuses": dict(sorted(statuses.items())),
        "errors": dict(sorted(errors.items())),
        "ok": len(outcomes) == len(deliveries) and set(statuses) <= {"200"} and not errors,
    }


def _summary_line(summary: dict[str, Any]) -> str:
    parts = [f"{status}: {count}" for status, count in summary["statuses"].items()]
    parts += [f"{error}: {count}" for error, count in summary["errors"].items()]
    if summary["sent"] < summary["planned"]:
        parts.append(f"{summary['planned'] - summary['sent']} not sent")
    return (
        f"sent {summary['sent']} deliveries ({summary['events']} events, {summary['duplicates']} duplicates) "
        f"in {summary['seconds']:.2f} s ({summary['per_second'] or 0:g}/s): " + ", ".join(parts or ["nothing"])
    )


def _configured_secret(settings: Settings, source: str) -> str:
    now_ms = int(time.time() * 1000)
    config = settings.sources.get(source)
    if config is not None:
        valid = [s for s in config.secrets if s.expires_at_ms is None or now_ms < s.expires_at_ms]
        if valid:
            # During a rotation sign with the secret that stays valid longest: the new one.
            newest = max(valid, key=lambda s: float("inf") if s.expires_at_ms is None else s.expires_at_ms)
            return newest.value.decode()
    if source == DEFAULT_SOURCE:
        saved = saved_secret(Path(settings.data_dir))
        if saved:
            return saved
        raise ConfigError(
            "WORKOS_WEBHOOK_SECRET",
            f"not set and no {Path(settings.data_dir) / SECRET_FILE} to fall back on; pass --secret, "
            "or run `hookyard dev` once to create one",
        )
    setting = "HOOKYARD_SOURCE_" + source.upper().replace("-", "_") + "_SECRETS"
    raise ConfigError(setting, f"no valid secret for source {source!r}; set it or pass --secret")


def _read_body(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise HookyardError(f"cannot read {path}: {exc.strerror}") from None


def _event_id(body: bytes) -> str:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "-"
    event_id = document.get("id") if isinstance(document, dict) else None
    return event_id if isinstance(event_id, str) and event_id else "-"
