"""`hookyard send`: POST realistic signed WorkOS events (or a file's bytes) to a receiver — one for a demo, many for
load: duplicate deliveries, shuffled order and a fixed rate, sent concurrently; fields set by hand (`--set`) and
the events of one resource in a given order (`--sequence`)."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from processor.cli.arguments import Verbs, positive_int, probability, source_name
from processor.cli.context import settings_without_redis, webhook_url
from processor.cli.devstate import SECRET_FILE, saved_secret
from processor.cli.render import Progress, print_json, say, warn
from processor.cli.sender import FATAL_ERRORS, Delivery, Outcome, send_all
from processor.devtools.samples import EVENT_TYPES, sample_event
from shared.clock import wall_ms
from shared.errors import ConfigError, HookyardError
from shared.settings import DEFAULT_SOURCE, Settings

__all__ = ["Override", "add_parser", "apply_overrides", "override", "plan_deliveries"]

ALL_TYPES = "all"
_SEND_TIMEOUT_S = 10.0
_DEFAULT_CONCURRENCY = 16
# Events of one --sequence are issued this far apart: far enough that their order is plain in any log.
_SEQUENCE_STEP = timedelta(seconds=1)

#: One `--set`: a dotted path into the envelope and the value to put there.
Override = tuple[tuple[str, ...], Any]


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
        "--set",
        dest="overrides",
        action="append",
        type=override,
        default=[],
        metavar="PATH=VALUE",
        help="set a field of every sample, by a dotted path into the envelope (data.state=inactive); VALUE is "
        "read as JSON when it parses (3, true, null, {...}), else as a string; repeatable",
    )
    send.add_argument(
        "--sequence",
        metavar="T1,T2,...",
        help="send these event types about one resource, issued in this order 1 s apart (with --count: N "
        "resources); a name without dots continues the first type's family: dsync.user.created,updated,deleted",
    )
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
    if args.file is not None and (args.event_type is not None or args.sequence is not None):
        args.parser.error("--file sends its bytes as they are: give no EVENT_TYPE or --sequence with it")
    if args.file is None and args.event_type is None and args.sequence is None:
        args.parser.error("give an EVENT_TYPE, --sequence or --file")
    if args.file is not None and args.overrides:
        args.parser.error("--set changes samples; --file sends its bytes as they are")
    if args.sequence is not None and args.event_type == ALL_TYPES:
        args.parser.error("--sequence sends the types it names: give no EVENT_TYPE 'all' with it")
    if args.rate is not None and args.rate <= 0:
        args.parser.error("--rate must be above 0")
    sequence = _sequence_types(args.parser, args.sequence, args.event_type) if args.sequence else None
    settings = settings_without_redis(environ)
    url = args.url or webhook_url(settings.host, settings.port, args.source)
    secret = (args.secret or _configured_secret(settings, args.source)).encode()
    rng = random.Random(args.seed)
    if args.file is not None:
        raw = _read_body(args.file)
        bodies = [raw] * args.count
    else:
        if sequence is not None:
            envelopes = [e for _ in range(args.count) for e in _sequence(sequence, rng)]
        else:
            types = EVENT_TYPES if args.event_type == ALL_TYPES else (args.event_type,)
            envelopes = [sample_event(t, rng=rng) for _ in range(args.count) for t in types]
        bodies = [orjson.dumps(apply_overrides(e, args.overrides)) for e in envelopes]
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
    refused = next((o for o in outcomes if o.status == 401), None)
    if refused is not None and not single:
        # Every delivery signed with a wrong secret is refused for the same reason: say it once.
        warn(f"hookyard send: {url} refused the signature (401): {_refusal(refused.text)}")
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


def override(raw: str) -> Override:
    """`PATH=VALUE` of `--set`: the path split on dots, the value parsed as JSON when it parses."""
    path, sep, value = raw.partition("=")
    names = tuple(path.strip().split("."))
    if not sep or not all(names):
        raise argparse.ArgumentTypeError(f"expected PATH=VALUE with a dotted PATH (data.state=inactive), got {raw!r}")
    try:
        parsed: Any = orjson.loads(value)
    except orjson.JSONDecodeError:
        parsed = value
    return names, parsed


def apply_overrides(envelope: dict[str, Any], overrides: Sequence[Override]) -> dict[str, Any]:
    """`envelope` with every override set in turn (missing objects on a path are created)."""
    for path, value in overrides:
        node = envelope
        for depth, name in enumerate(path[:-1]):
            child = node.setdefault(name, {})
            if not isinstance(child, dict):
                raise HookyardError(f"--set {'.'.join(path)}: {'.'.join(path[: depth + 1])} is not an object")
            node = child
        node[path[-1]] = value
    return envelope


def _sequence_types(parser: argparse.ArgumentParser, raw: str, event_type: str | None) -> list[str]:
    names = [name.strip() for name in raw.split(",") if name.strip()]
    family_of = next((n for n in ([event_type] if event_type else []) + names if "." in n), None)
    family = family_of.rpartition(".")[0] if family_of else ""
    types = [name if "." in name else f"{family}.{name}" for name in names]
    unknown = [t for t in types if t not in EVENT_TYPES]
    if not types or unknown:
        parser.error(f"--sequence: unknown event types {', '.join(unknown) or '(none given)'}")
    return types


def _sequence(types: Sequence[str], rng: random.Random) -> list[dict[str, Any]]:
    """Samples of `types` about one resource (and its directory or organization), issued 1 s apart."""
    start = datetime.now(UTC) - _SEQUENCE_STEP * (len(types) - 1)
    first = sample_event(types[0], rng=rng, created_at=start)
    resource, directory, organization = _about(first)
    rest = [
        sample_event(
            t,
            rng=rng,
            created_at=start + _SEQUENCE_STEP * i,
            resource_id=resource,
            directory_id=directory,
            organization_id=organization,
        )
        for i, t in enumerate(types[1:], start=1)
    ]
    return [first, *rest]


def _about(envelope: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    # As processor.devtools.samples pins `resource_id`: a membership is about its user, a certificate about its
    # connection.
    data = envelope.get("data") or {}
    event_type = str(envelope.get("event", ""))
    nested = None
    if event_type.startswith("dsync.group.user_"):
        nested = data.get("user")
    elif event_type.startswith("connection.saml_certificate_"):
        nested = data.get("connection")
    holder = nested if isinstance(nested, dict) else data
    return holder.get("id"), data.get("directory_id"), data.get("organization_id")


def _refusal(text: str) -> str:
    # The receiver answers {"error": "invalid_signature", "reason": "mismatch"}; another server, anything.
    try:
        answer = orjson.loads(text)
    except orjson.JSONDecodeError:
        return text or "(no reason given)"
    reason = answer.get("reason") if isinstance(answer, dict) else None
    if reason == "mismatch":
        return "mismatch — the secret is not the receiver's; check --secret or WORKOS_WEBHOOK_SECRET"
    return str(reason) if reason else text


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
    now_ms = wall_ms()
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
