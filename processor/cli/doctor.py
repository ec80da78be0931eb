"""`hookyard doctor`: is this installation able to keep its promises? Each check looks at one thing that must hold
for Hookyard to keep them (docs/guarantees.md) and says, in one line, what it found and what to do about it; exit 1
if any fails."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import redis

from processor.broker import probe_broker
from processor.cli.arguments import Verbs
from processor.cli.context import connect, load_registry, redis_trouble, settings_for_redis, without_password
from processor.cli.devstate import SECRET_FILE, saved_secret
from processor.cli.handler_sets import LiveHandlers, read_live_handlers
from processor.cli.mirror import configured_mirror_url, mirror_revision
from processor.cli.render import Marks, age, iso, print_json, say
from processor.mirror.migrate import head_revision
from processor.reconcile.state import ReconcileState
from processor.stats import ALIVE_MS, read_snapshot
from shared.clock import wall_ms
from shared.durability import CONFIG_NAMES, Durability, assess_durability
from shared.errors import HookyardError, RegistrationError
from shared.settings import Settings

__all__ = ["add_parser"]


def add_parser(verbs: Verbs) -> None:
    doctor = verbs.add_parser(
        "doctor",
        help="check secrets, Redis, handlers and workers",
        description=(
            "Check what Hookyard's guarantees rest on: every source has a valid secret (counts and expiry "
            "shown, never the secret), Redis answers, runs with appendonly yes and maxmemory-policy "
            "noeviction, its clock agrees with this machine's (a warning above 1 s), the live workers loaded "
            "one and the same handler set (a warning when they differ: a rolling deploy; with no live worker, "
            "every handler module imports here), workers are alive, the Events API reconcile cursor keeps up, "
            "the wake-up broker answers, and the WorkOS mirror's database (when one is configured) answers and is "
            "migrated. One line per check (✓ ok, ! warning, "
            "✗ failure, - skipped) with a hint. Exits 0 when nothing failed, 1 otherwise; warnings do not fail."
        ),
    )
    doctor.add_argument("--json", action="store_true", help="print one JSON document")
    doctor.set_defaults(run=_run)


def _run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    settings = settings_for_redis(environ)
    now_ms = wall_ms()
    found = [check_secrets(settings, now_ms)]
    unreachable = "Redis did not answer"
    with connect(settings) as client:
        reachable, info = check_redis(client, settings)
        found.append(reachable)
        if info is None:
            found += [Check(name, "skip", unreachable) for name in ("persistence", "eviction", "clock")]
        else:
            found += [
                check_persistence(client, info),
                check_eviction(client, info),
                check_clock(client),
            ]
            if settings.redis_cluster:
                from processor.cli.doctor_cluster import check_cluster  # it builds on this module's Check

                found.append(check_cluster(client, settings))
        found.append(check_handlers(settings, read_live_handlers(client, now_ms) if info is not None else None))
        found.append(check_workers(client, now_ms) if info is not None else Check("workers", "skip", unreachable))
        found.append(
            check_reconcile(client, settings, now_ms) if info is not None else Check("reconcile", "skip", unreachable)
        )
    if settings.broker_url == settings.redis_url and info is None:
        found.append(Check("broker", "skip", unreachable))  # the same Redis: asking again would only wait again
    else:
        found.append(check_broker(settings))
    mirror_url = configured_mirror_url(settings)
    if mirror_url is not None:
        found.append(check_mirror(mirror_url))
    ok = not any(check.status == "fail" for check in found)
    if args.json:
        print_json(
            {
                "ok": ok,
                "checks": [
                    {"name": c.name, "status": c.status, "detail": c.detail, "hint": c.hint or None} for c in found
                ],
            }
        )
    else:
        marks = Marks(sys.stdout)
        width = max(len(c.name) for c in found)
        for check in found:
            mark = {"ok": marks.ok, "warn": marks.warn, "fail": marks.fail, "skip": marks.skip}[check.status]
            line = f"{mark} {check.name.ljust(width)}  {check.detail}"
            say(line + (f" {marks.dash} {check.hint}" if check.hint else ""))
    return 0 if ok else 1


# --- the checks -----------------------------------------------------------------------------------------------

Status = Literal["ok", "warn", "fail", "skip"]

#: Beyond this, the receiver's and the workers' clocks disagree enough to notice in `received`/`issued` times.
CLOCK_SKEW_WARN_S = 1.0
#: A secret that stops being accepted this soon, with no successor configured, is a coming outage.
EXPIRY_WARN_S = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class Check:
    """One line of `hookyard doctor`: what was checked, how it went, what was seen, and a hint when not ok."""

    name: str
    status: Status
    detail: str
    hint: str = ""


def check_secrets(settings: Settings, now_ms: int) -> Check:
    """Every source has a secret valid now; never prints one, only how many there are and when they expire."""
    dev_secret = Path(settings.data_dir) / SECRET_FILE
    if not settings.sources and saved_secret(Path(settings.data_dir)):
        # What `hookyard dev` gives its receiver when WORKOS_WEBHOOK_SECRET is not set.
        return Check("secrets", "ok", f"workos: 1 secret, the development one `hookyard dev` keeps in {dev_secret}")
    if not settings.sources:
        return Check(
            "secrets",
            "fail",
            "no source has a secret: the receiver cannot verify any delivery",
            "set WORKOS_WEBHOOK_SECRET (and HOOKYARD_SOURCE_<NAME>_SECRETS for each of HOOKYARD_SOURCES)",
        )
    parts: list[str] = []
    status: Status = "ok"
    hints: list[str] = []
    for name, source in sorted(settings.sources.items()):
        valid = [s for s in source.secrets if s.expires_at_ms is None or s.expires_at_ms > now_ms]
        expiring = sorted(s.expires_at_ms for s in valid if s.expires_at_ms is not None)
        part = f"{name}: {len(source.secrets)} secret{'s' if len(source.secrets) != 1 else ''}"
        if len(valid) != len(source.secrets):
            part += f" ({len(source.secrets) - len(valid)} expired)"
        if expiring:
            part += f", next expiry {iso(expiring[0])} ({age((expiring[0] - now_ms) / 1000)} from now)"
        parts.append(part)
        if not valid:
            status = "fail"
            hints.append(f"{name} has no valid secret: deliveries get 401")
        elif len(expiring) == len(valid) and (expiring[-1] - now_ms) / 1000 < EXPIRY_WARN_S:
            status = "fail" if status == "fail" else "warn"
            hints.append(f"every secret of {name} expires within {age(EXPIRY_WARN_S)}: add its successor")
    return Check("secrets", status, "; ".join(parts), "; ".join(hints))


def check_redis(client: redis.Redis, settings: Settings) -> tuple[Check, dict[str, Any] | None]:
    """Redis answers; also returns its INFO for the checks that follow (None when it did not answer)."""
    url = without_password(settings.redis_url)
    started = time.perf_counter()
    try:
        client.ping()
        elapsed_ms = (time.perf_counter() - started) * 1000
        info: dict[str, Any] = client.info()
    except redis.RedisError as exc:
        finding, hint = redis_trouble(exc, settings.redis_url)
        return Check("redis", "fail", finding, hint), None
    version = info.get("redis_version", "?")
    return Check("redis", "ok", f"{url} answered in {elapsed_ms:.1f} ms (Redis {version})"), info


def check_persistence(client: redis.Redis, info: dict[str, Any]) -> Check:
    """AOF is on: without it a Redis restart loses events the receiver already answered 200 for."""
    finding = _durability(client, info).persistence
    if finding.durable:
        fsync = _config(client, "appendfsync")
        return Check("persistence", "ok", "appendonly yes" + (f", appendfsync {fsync}" if fsync else ""))
    return Check(
        "persistence",
        "fail",
        f"appendonly {finding.value or 'unknown'}: a Redis restart loses accepted events",
        "set appendonly yes (see deploy/redis.conf): CONFIG SET appendonly yes, and in redis.conf",
    )


def check_eviction(client: redis.Redis, info: dict[str, Any]) -> Check:
    """`maxmemory-policy noeviction`: any other policy may evict queued events when memory runs short."""
    finding = _durability(client, info).eviction
    if finding.durable:
        return Check("eviction", "ok", "maxmemory-policy noeviction")
    return Check(
        "eviction",
        "fail",
        f"maxmemory-policy {finding.value or 'unknown'}: Redis may evict accepted events under memory pressure",
        "set maxmemory-policy noeviction (see deploy/redis.conf)",
    )


def check_clock(client: redis.Redis) -> Check:
    """This machine's clock against Redis's: received times, leases and retry times come from local clocks."""
    before = time.time()
    seconds, micros = client.time()
    after = time.time()
    skew = (seconds + micros / 1e6) - (before + after) / 2
    detail = f"local clock {abs(skew):.3f} s {'behind' if skew > 0 else 'ahead of'} Redis"
    if abs(skew) <= CLOCK_SKEW_WARN_S:
        return Check("clock", "ok", detail)
    return Check("clock", "warn", detail, "sync the clocks (NTP) of the receiver, worker and Redis hosts")


def check_handlers(settings: Settings, live: LiveHandlers | None) -> Check:
    """The live workers loaded one and the same handler set; with none alive (or none saying), every handler
    module imports here, as a worker started here would import it."""
    if live is not None and live.sets and live.agree:
        [loaded] = live.sets
        names = [str(handler["name"]) for handler in loaded.handlers]
        if names:
            workers = _workers(len(loaded.workers))
            return Check("handlers", "ok", f"{len(names)} loaded by {workers}: {', '.join(names)}")
        return _no_handlers("the live workers loaded no handlers")
    if live is not None and live.sets:
        sets = [f"{s.label}: {len(s.handlers)} handlers on {_workers(len(s.workers))}" for s in live.sets]
        sets += [f"?: not published by {_workers(len(live.silent))}"] if live.silent else []
        return Check(
            "handlers",
            "warn",
            f"the live workers loaded different handler sets ({'; '.join(sets)})",
            "a rolling deploy in progress? `hookyard handlers` shows which worker runs what",
        )
    try:
        registry = load_registry(settings)
    except RegistrationError as exc:
        return Check("handlers", "fail", str(exc), "fix the module, or remove it from HOOKYARD_HANDLERS")
    names = sorted(spec.name for spec in registry)
    if not names:
        return _no_handlers("no handlers registered")
    return Check("handlers", "ok", f"{len(names)} import: {', '.join(names)}")


def check_mirror(url: str) -> Check:
    """The WorkOS mirror's database answers and is migrated to the revision this code writes."""
    shown = without_password(url)
    try:
        current = mirror_revision(url)
    except HookyardError as exc:
        return Check("mirror", "fail", str(exc), "is the database up, and HOOKYARD_MIRROR_URL right?")
    head = head_revision()
    if current == head:
        return Check("mirror", "ok", f"{shown} at revision {head}")
    return Check(
        "mirror",
        "fail",
        f"{shown} is at revision {current or 'none'}, this Hookyard writes {head}: the mirror's writes fail",
        "run `hookyard mirror migrate`",
    )


def _workers(count: int) -> str:
    return f"{count} live worker{'s' if count != 1 else ''}"


def _no_handlers(finding: str) -> Check:
    return Check(
        "handlers",
        "warn",
        f"{finding}: events are stored but nothing runs them",
        "set HOOKYARD_HANDLERS or install a plugin (entry point group hookyard.handlers)",
    )


def check_workers(client: redis.Redis, now_ms: int) -> Check:
    """At least one worker swept recently, so accepted events are being processed."""
    snapshot = read_snapshot(client, now_ms)
    alive = snapshot.workers_alive
    if alive:
        return Check("workers", "ok", f"{alive} worker process{'es' if alive != 1 else ''} alive")
    return Check(
        "workers",
        "fail",
        f"no worker swept in the last {ALIVE_MS // 1000} s: events wait in Redis",
        "start them: `hookyard worker` (or `make run` locally)",
    )


def check_broker(settings: Settings) -> Check:
    """The wake-up broker answers: without it nothing is lost, but no handler runs until it is back."""
    state = probe_broker(settings.broker_url)
    where = "the store's Redis" if settings.broker_url == settings.redis_url else f"{state.kind} at {state.url}"
    if state.reachable:
        queued = f"{state.queued} wake-up{'s' if state.queued != 1 else ''} queued"
        return Check("broker", "ok", f"{where} answered in {state.elapsed_ms:.1f} ms, {queued}")
    return Check(
        "broker",
        "fail",
        f"{where} did not answer ({state.error}): events are kept, but no handler runs until it does",
        "start the broker or fix HOOKYARD_BROKER_URL (docs/operations.md, The wake-up broker)",
    )


def check_reconcile(client: redis.Redis, settings: Settings, now_ms: int) -> Check:
    """With HOOKYARD_RECONCILE_INTERVAL set, the reconcile cursor keeps up with the Events API."""
    config = settings.reconcile
    state = ReconcileState(client)
    missed = sum(state.tally().missed.values())
    tally = f"{missed} event{'s' if missed != 1 else ''} missed by webhooks so far"
    if not config.interval_s:
        return Check("reconcile", "ok", f"off (HOOKYARD_RECONCILE_INTERVAL unset); {tally}")
    cursor = state.cursor()
    if cursor.position_ms is None:
        return Check(
            "reconcile", "warn", "on, but no round has finished yet",
            "check the workers' `reconcile.*` log lines (WORKOS_API_KEY, WORKOS_BASE_URL)",
        )  # fmt: skip
    lag_s = (now_ms - cursor.position_ms) / 1000
    # A healthy loop is settle + about one interval behind; three intervals more means rounds are failing.
    allowed_s = config.settle_s + 3 * config.interval_s + 60
    detail = f"cursor {age(lag_s)} behind (settle {age(config.settle_s)}); {tally}"
    if lag_s > allowed_s:
        return Check(
            "reconcile", "warn", detail,
            "the Events API is failing or rate limiting: see `hookyard_reconcile_requests_total` and the logs",
        )  # fmt: skip
    return Check("reconcile", "ok", detail)


def _durability(client: redis.Redis, info: dict[str, Any]) -> Durability:
    return assess_durability([_config_reply(client, name) for name in CONFIG_NAMES], info)


def _config(client: redis.Redis, name: str) -> str | None:
    found = _config_reply(client, name)
    value = found.get(name) if isinstance(found, dict) else None
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _config_reply(client: redis.Redis, name: str) -> object:
    # Managed Redis services often rename or forbid CONFIG; INFO then says enough for the durability checks.
    try:
        reply: object = client.config_get(name)
    except redis.ResponseError:
        return None
    return reply
