"""`hookyard reconcile`: one pass over the WorkOS Events API, feeding every event no webhook delivered into the
inbox (as the workers' reconcile loop does continuously); the workers then handle them like any arrival."""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable

from processor.cli.arguments import TimeBound, Verbs, time_bound
from processor.cli.context import connect, load_registry, settings_for_redis
from processor.cli.render import print_json, say
from processor.reconcile.query import EventsQuery
from processor.reconcile.reconciler import PassResult, Reconciler
from shared.clock import wall_ms
from shared.errors import ConfigError, EventsApiUnavailable, HookyardError
from shared.logging import configure_logging
from shared.settings import Settings

__all__ = ["add_parser"]

_ATTEMPTS = 5
_LEASE_MS = 60_000


def add_parser(verbs: Verbs) -> None:
    reconcile = verbs.add_parser(
        "reconcile",
        help="fetch the events webhooks missed from the WorkOS Events API",
        description=(
            "List events with the WorkOS Events API (the workos SDK, WORKOS_API_KEY, WORKOS_BASE_URL) and queue "
            "every one that no webhook delivered, marked as an Events API copy: the workers dedupe, order and "
            "handle both channels as one stream. --since or --after read a range once without touching the "
            "workers' cursor; with neither, the pass goes on from that cursor (as the leader, so not beside a "
            "running reconcile loop) and moves it. Events younger than HOOKYARD_RECONCILE_SETTLE are left to "
            "their webhooks. A 429 or 5xx is retried after its Retry-After (5 attempts)."
        ),
    )
    start = reconcile.add_mutually_exclusive_group()
    start.add_argument("--since", type=time_bound, metavar="TIME", help="events created since: 3d, 12h, or ISO 8601")
    start.add_argument("--after", metavar="EVENT_ID", help="events after this event id")
    reconcile.add_argument(
        "--types", metavar="TYPE,…", help="event types to list (default: every type a loaded handler takes)"
    )
    reconcile.add_argument("--organization", metavar="ORG_ID", help="only this organization's events")
    reconcile.add_argument("--json", action="store_true", help="print one JSON document")
    reconcile.set_defaults(run=_run)


def _run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    # Imported here: the workos SDK takes half a second to import, which every other verb would pay.
    from processor.reconcile.events_api import EventsApi
    from processor.reconcile.loop import event_types

    settings = settings_for_redis(environ)
    # The verb prints its own summary on stdout; only warnings and errors are logged, on stderr.
    configure_logging("warning", settings.log_format)
    config = settings.reconcile
    if config.api_key is None:
        raise ConfigError("WORKOS_API_KEY", "not set: the Events API needs an API key (sk_…)")
    types = tuple(t.strip() for t in args.types.split(",") if t.strip()) if args.types else None
    if not types:
        types = event_types(config, load_registry(settings))
    now = wall_ms()
    api = EventsApi(config.api_key.value.decode(), config.base_url)
    try:
        with connect(settings) as client:
            reconciler = Reconciler(api, client, source=config.source, clock_ms=wall_ms)
            result = _pass(reconciler, settings, types, args.organization or config.organization, args, now)
    finally:
        api.close()
    document = {
        "source": config.source,
        "fetched": result.fetched,
        "new": result.new,
        "seen": result.seen,
        "invalid": result.invalid,
        "pages": result.pages,
        "caught_up": result.caught_up,
        "after": result.cursor.after,
    }
    if args.json:
        print_json(document)
    else:
        say(
            f"{result.fetched} events from the Events API in {result.pages} page{'s' if result.pages != 1 else ''}: "
            f"{result.new} new (queued for the workers), {result.seen} already arrived"
            + (f", {result.invalid} unusable" if result.invalid else "")
            + (f" · last event {result.cursor.after}" if result.cursor.after else "")
        )
    return 0


def _pass(
    reconciler: Reconciler,
    settings: Settings,
    types: tuple[str, ...],
    organization: str | None,
    args: argparse.Namespace,
    now: int,
) -> PassResult:
    config = settings.reconcile
    end = now - int(config.settle_s * 1000)
    since: TimeBound | None = args.since
    if since is not None or args.after:
        query = EventsQuery(types, organization, since.resolve(now) if since else None, end)
        return _with_retries(lambda: reconciler.run(query, args.after))
    # From the workers' cursor: lead while doing so, so a running loop and this pass never move it both.
    token = uuid.uuid4().hex
    if not reconciler.state.hold_lease(token, _LEASE_MS):
        raise HookyardError("a worker's reconcile loop leads now; give --since or --after for a one-off pass")
    try:
        cursor = reconciler.state.cursor()
        start = None if cursor.after else (cursor.position_ms or now - int(config.since_s * 1000))
        query = EventsQuery(types, organization, start, end)

        def renew() -> bool:
            return reconciler.state.hold_lease(token, _LEASE_MS)

        return _with_retries(
            lambda: reconciler.run(query, reconciler.state.cursor().after, keep_cursor=True, token=token, renew=renew)
        )
    finally:
        reconciler.state.release_lease(token)


def _with_retries(attempt: Callable[[], PassResult]) -> PassResult:
    wait = 1.0
    for number in range(1, _ATTEMPTS + 1):
        try:
            return attempt()
        except EventsApiUnavailable as exc:
            if number == _ATTEMPTS:
                raise
            pause = max(wait, exc.retry_after_s or 0.0)
            say(f"{exc}; trying again in {pause:g} s")
            time.sleep(pause)  # the API asked us to wait (Retry-After) or is down: back off before the next try
            wait = min(wait * 2, 60.0)
    raise AssertionError("unreachable")
