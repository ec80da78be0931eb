"""The checks `hookyard doctor` runs: each looks at one thing that must hold for Hookyard to keep its promises
(docs/guarantees.md) and says, in one line, what it found and what to do about it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import redis

from processor.cli.addresses import without_password
from processor.cli.devstate import SECRET_FILE, saved_secret
from processor.cli.registry import load_registry
from processor.cli.timefmt import age, iso
from processor.stats import ALIVE_MS, read_snapshot
from shared.durability import CONFIG_NAMES, Durability, assess_durability
from shared.errors import RegistrationError
from shared.settings import Settings

__all__ = [
    "Check",
    "Status",
    "check_clock",
    "check_eviction",
    "check_handlers",
    "check_persistence",
    "check_redis",
    "check_secrets",
    "check_workers",
]

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
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return Check("redis", "fail", f"cannot reach Redis at {url}: {reason}", "is it running? check REDIS_URL"), None
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


def check_handlers(settings: Settings) -> Check:
    """Every handler module imports, as the worker will import it at start."""
    try:
        registry = load_registry(settings)
    except RegistrationError as exc:
        return Check("handlers", "fail", str(exc), "fix the module, or remove it from HOOKYARD_HANDLERS")
    names = sorted(spec.name for spec in registry)
    if not names:
        return Check(
            "handlers",
            "warn",
            "no handlers registered: events are stored but nothing runs them",
            "set HOOKYARD_HANDLERS or install a plugin (entry point group hookyard.handlers)",
        )
    return Check("handlers", "ok", f"{len(names)} import: {', '.join(names)}")


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
