"""Hookyard's configuration: read once from the environment, cast, validated, immutable.

Every setting Hookyard reads is parsed here and documented in docs/configuration.md; no other module reads
`os.environ`. An invalid value raises `ConfigError` naming the setting, so a process refuses to start. A
`HOOKYARD_*` variable that no setting reads (`HOOKYARD_REORDER_WINDOWS`) would be ignored without a word: it is
reported once per process as an `UnknownSettingWarning` naming the closest setting there is.
"""

from __future__ import annotations

import difflib
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from shared.console_settings import ConsoleSettings, read_console
from shared.errors import ConfigError
from shared.keys import INBOX_SHARDS_MAX

__all__ = [
    "CLUSTER_SCHEMES",
    "DEFAULT_SOURCE",
    "STORE_URL_SCHEMES",
    "ReconcileSettings",
    "Secret",
    "Settings",
    "SourceConfig",
    "UnknownSettingWarning",
    "parse_duration",
]

DEFAULT_SOURCE = "workos"
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")
STORE_URL_SCHEMES = ("redis://", "rediss://", "unix://", *CLUSTER_SCHEMES)
_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_OURS = "HOOKYARD_"
_SOURCE_SETTING = re.compile(r"^HOOKYARD_SOURCE_[A-Z0-9_]+_(SECRETS|TOLERANCE)$")


class UnknownSettingWarning(UserWarning):
    """A `HOOKYARD_*` environment variable that no setting reads: most likely a misspelt one."""


@dataclass(frozen=True, slots=True)
class Secret:
    """One signing secret of a source; `expires_at_ms` ends its validity (rotation without downtime)."""

    value: bytes = field(repr=False)
    expires_at_ms: int | None = None

    def __repr__(self) -> str:
        return f"Secret(****, expires_at_ms={self.expires_at_ms})"


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """A webhook sender we accept deliveries from: `POST /webhooks/{name}`."""

    name: str
    secrets: tuple[Secret, ...]
    tolerance_s: float

    def secrets_at(self, now_ms: int) -> tuple[bytes, ...]:
        """The secrets still valid at `now_ms`."""
        return tuple(s.value for s in self.secrets if s.expires_at_ms is None or now_ms < s.expires_at_ms)


def parse_duration(setting: str, raw: str) -> float:
    """Seconds from `"180"`, `"180s"`, `"500ms"`, `"5m"`, `"2h"` or `"7d"`."""
    match = _DURATION.match(raw)
    if match is None:
        raise ConfigError(setting, f"expected a duration such as 180, 500ms, 5m, 7d; got {raw!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _parse_secrets(setting: str, raw: str) -> tuple[Secret, ...]:
    # `secret` or `secret@2026-12-01T00:00:00Z`; comma-separated so a rotation lists old and new together.
    secrets: list[Secret] = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        value, _, expiry = part.partition("@")
        expires_at_ms: int | None = None
        if expiry:
            try:
                when = datetime.fromisoformat(expiry.replace("Z", "+00:00"))
            except ValueError:
                raise ConfigError(setting, "a secret's expiry after '@' must be an ISO-8601 time") from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            expires_at_ms = int(when.timestamp() * 1000)
        if len(value) < 8:
            raise ConfigError(setting, "each secret must be at least 8 characters")
        secrets.append(Secret(value.encode(), expires_at_ms))
    return tuple(secrets)


class _Reader:
    """Reads and casts settings, remembering which names were read (the known names, for `warn_unknown`)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.names: set[str] = set()

    def raw(self, name: str) -> str | None:
        self.names.add(name)
        return self.env.get(name)

    def text(self, name: str, default: str) -> str:
        return (self.raw(name) or "").strip() or default

    def integer(self, name: str, default: int, *, minimum: int = 0, maximum: int = 2**31) -> int:
        raw = (self.raw(name) or "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(name, f"expected a whole number, got {raw!r}") from None
        if not minimum <= value <= maximum:
            raise ConfigError(name, f"must be between {minimum} and {maximum}, got {value}")
        return value

    def warn_unknown(self) -> None:
        """Warn about every `HOOKYARD_*` variable set but never read, suggesting the closest name read."""
        known = sorted(self.names)
        for name in sorted(n for n in self.env if n.startswith(_OURS) and n not in self.names):
            closest = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {closest[0]}?" if closest else ""
            if _SOURCE_SETTING.match(name):
                hint = "; is its source listed in HOOKYARD_SOURCES?"
            # Always from this line: the warnings registry then shows each message once per process, however
            # many times the settings are built.
            warnings.warn(f"{name} is not a Hookyard setting and is ignored{hint}", UnknownSettingWarning, stacklevel=1)

    def duration(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        raw = self.raw(name)
        value = default if raw is None or not raw.strip() else parse_duration(name, raw)
        if value < minimum:
            raise ConfigError(name, f"must be at least {minimum} s, got {value} s")
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.raw(name)
        if raw is None:
            return default
        lowered = raw.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(name, f"expected true or false, got {raw!r}")

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def csv(self, name: str) -> tuple[str, ...]:
        return tuple(p.strip() for p in (self.raw(name) or "").split(",") if p.strip())


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    """Reconciliation from the WorkOS Events API (`hookyard reconcile`, and the workers' loop when `interval_s`)."""

    api_key: Secret | None = None
    base_url: str = "https://api.workos.com"
    interval_s: float = 0.0  # 0: the workers do not reconcile
    settle_s: float = 60.0  # events younger than this are left to their webhooks
    since_s: float = 86400.0  # where a cursor that was never set starts
    source: str = DEFAULT_SOURCE  # the source API copies are filed under (dedupe with its webhooks)
    types: tuple[str, ...] = ()  # empty: every type a loaded handler subscribes to
    organization: str | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable, in one immutable object built once per process by `Settings.from_env`."""

    redis_url: str
    sources: Mapping[str, SourceConfig]
    #: Where the workers' wake-up messages go (HOOKYARD_BROKER_URL): a Redis or a RabbitMQ; the store by default.
    broker_url: str = ""
    # receiver
    host: str = "127.0.0.1"
    port: int = 8000
    ops_port: int | None = None
    max_body_bytes: int = 1024 * 1024
    enqueue_timeout_s: float = 2.0
    #: Replicas that must hold an append before it is acknowledged (Redis WAIT); 0 acknowledges on the primary.
    min_replicas: int = 0
    #: Inbox lists the receiver spreads appends over, each with its own ingest lease (and hash slot).
    inbox_shards: int = 1
    # processor
    workers: int = 1
    worker_threads: int = 8
    handler_modules: tuple[str, ...] = ()
    entry_points: bool = True
    log_events: bool = False
    mirror_url: str | None = None
    dedupe_ttl_s: float = 7 * 86400.0
    retention_s: float = 7 * 86400.0
    reorder_window_s: float = 5.0
    recovery_timeout_s: float = 30.0
    sweep_interval_s: float = 1.0
    handoff_after_s: float = 0.5
    max_abandoned_threads: int = 4
    dead_letter_retention_s: float = 30 * 86400.0
    dead_letter_limit: int = 100_000
    worker_metrics_port: int = 9191
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    # both
    log_level: str = "info"
    log_format: str = "auto"
    data_dir: str = ".hookyard"

    def __post_init__(self) -> None:
        if not self.broker_url:  # built without one (tests, tools): the wake-ups share the store (cluster: none)
            object.__setattr__(self, "broker_url", self.redis_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, require_secret: bool = True) -> Settings:
        """Build settings from an environment mapping; raises `ConfigError` naming the first bad setting."""
        read = _Reader(env)
        redis_url = read.text("REDIS_URL", "")
        if not redis_url:
            raise ConfigError("REDIS_URL", "not set (e.g. redis://127.0.0.1:6379/0); `hookyard dev` starts one")
        if not redis_url.startswith(STORE_URL_SCHEMES):
            raise ConfigError(
                "REDIS_URL",
                "must start with redis://, rediss://, unix:// or (a cluster) redis+cluster://, rediss+cluster://",
            )
        sources = _read_sources(read, require_secret=require_secret)
        broker_url = _read_broker_url(read, redis_url)
        ops_port = read.integer("HOOKYARD_OPS_PORT", 0, maximum=65535)
        port = read.integer("HOOKYARD_PORT", 8000, minimum=0, maximum=65535)
        if ops_port and ops_port == port:
            raise ConfigError("HOOKYARD_OPS_PORT", "must differ from HOOKYARD_PORT")
        recovery = read.duration("HOOKYARD_RECOVERY_TIMEOUT", 30.0, minimum=3.0)
        sweep = read.duration("HOOKYARD_SWEEP_INTERVAL", 1.0, minimum=0.05)
        if sweep * 3 > recovery:
            raise ConfigError("HOOKYARD_SWEEP_INTERVAL", "must be at most a third of HOOKYARD_RECOVERY_TIMEOUT")
        retention = read.duration("HOOKYARD_RETENTION", 7 * 86400.0, minimum=60.0)
        letter_retention = read.duration("HOOKYARD_DEAD_LETTER_RETENTION", max(30 * 86400.0, retention), minimum=60.0)
        threads = read.integer("HOOKYARD_WORKER_THREADS", 8, minimum=1, maximum=512)
        settings = cls(
            redis_url=redis_url,
            sources=sources,
            broker_url=broker_url,
            host=read.text("HOOKYARD_HOST", "127.0.0.1"),
            port=port,
            ops_port=ops_port or None,
            max_body_bytes=read.integer("HOOKYARD_MAX_BODY_BYTES", 1024 * 1024, minimum=1024, maximum=64 << 20),
            enqueue_timeout_s=read.duration("HOOKYARD_ENQUEUE_TIMEOUT", 2.0, minimum=0.01),
            min_replicas=read.integer("HOOKYARD_MIN_REPLICAS", 0, maximum=16),
            inbox_shards=read.integer("HOOKYARD_INBOX_SHARDS", 1, minimum=1, maximum=INBOX_SHARDS_MAX),
            workers=read.integer("HOOKYARD_WORKERS", 1, minimum=1, maximum=256),
            worker_threads=threads,
            handler_modules=read.csv("HOOKYARD_HANDLERS"),
            entry_points=read.flag("HOOKYARD_ENTRY_POINTS", True),
            log_events=read.flag("HOOKYARD_LOG_EVENTS", False),
            mirror_url=_mirror_url(read),
            dedupe_ttl_s=read.duration("HOOKYARD_DEDUPE_TTL", 7 * 86400.0, minimum=60.0),
            retention_s=retention,
            reorder_window_s=read.duration("HOOKYARD_REORDER_WINDOW", 5.0),
            recovery_timeout_s=recovery,
            sweep_interval_s=sweep,
            handoff_after_s=read.duration("HOOKYARD_HANDOFF_AFTER", 0.5, minimum=0.01),
            max_abandoned_threads=read.integer(
                "HOOKYARD_MAX_ABANDONED_THREADS", max(1, threads // 2), minimum=1, maximum=threads
            ),
            dead_letter_retention_s=letter_retention,
            dead_letter_limit=read.integer("HOOKYARD_DEAD_LETTER_LIMIT", 100_000, minimum=16, maximum=100_000_000),
            worker_metrics_port=read.integer("HOOKYARD_WORKER_METRICS_PORT", 9191, maximum=65535),
            reconcile=_read_reconcile(read, sources),
            console=read_console(read),
            log_level=read.choice("HOOKYARD_LOG_LEVEL", "info", ("debug", "info", "warning", "error")),
            log_format=read.choice("HOOKYARD_LOG_FORMAT", "auto", ("auto", "json", "console")),
            data_dir=read.text("HOOKYARD_DATA_DIR", ".hookyard"),
        )
        read.warn_unknown()  # once everything was read: the names read are the names known
        return settings

    @property
    def redis_cluster(self) -> bool:
        """True when REDIS_URL names a Redis Cluster (its seed nodes) rather than one server."""
        return self.redis_url.startswith(CLUSTER_SCHEMES)

    @property
    def lease_s(self) -> float:
        """How long a runner owns a (handler, key) without renewing: a third of the recovery budget."""
        return self.recovery_timeout_s / 3

    @property
    def wake_grace_s(self) -> float:
        """How long a sent wake-up is trusted before the sweep sends another (lost wake-ups cost this much)."""
        return self.recovery_timeout_s / 3


_BROKER_SCHEMES = ("redis://", "rediss://", "unix://", "amqp://", "amqps://")


def _read_broker_url(read: _Reader, redis_url: str) -> str:
    # Wake-ups are hints (a lost one costs latency until the sweep re-sends it), so they may travel through a
    # broker of their own. By default they share the store's Redis.
    broker_url = read.text("HOOKYARD_BROKER_URL", "")
    if not broker_url:
        # The one place that decides whether the store can carry the wake-ups too: Dramatiq's Redis broker does
        # not run on a cluster (its scripts span keys in many slots, dramatiq#682).
        if redis_url.startswith(CLUSTER_SCHEMES):
            raise ConfigError(
                "HOOKYARD_BROKER_URL",
                "must be set when REDIS_URL is a cluster: wake-ups need a plain Redis (redis://) or RabbitMQ (amqp://)",
            )
        return redis_url
    if not broker_url.startswith(_BROKER_SCHEMES):
        raise ConfigError("HOOKYARD_BROKER_URL", "must start with " + ", ".join(_BROKER_SCHEMES))
    try:
        urlsplit(broker_url).port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ConfigError("HOOKYARD_BROKER_URL", "its port is not a number between 0 and 65535") from None
    return broker_url


#: The Events API keeps 30 days of events: a cursor cannot usefully start further back.
_EVENTS_API_HORIZON_S = 30 * 86400.0


def _read_reconcile(read: _Reader, sources: Mapping[str, SourceConfig]) -> ReconcileSettings:
    # WORKOS_API_KEY and WORKOS_BASE_URL are the names the workos SDK itself documents; they are read here and
    # handed to the SDK, so nothing else reads the environment.
    key = read.text("WORKOS_API_KEY", "")
    base_url = read.text("WORKOS_BASE_URL", "https://api.workos.com")
    if not base_url.startswith(("https://", "http://")):
        raise ConfigError("WORKOS_BASE_URL", f"must be an http(s) URL, got {base_url!r}")
    interval = read.duration("HOOKYARD_RECONCILE_INTERVAL", 0.0)
    if 0 < interval < 1.0:
        raise ConfigError("HOOKYARD_RECONCILE_INTERVAL", "must be 0 (off) or at least 1 s")
    if interval and not key:
        raise ConfigError("WORKOS_API_KEY", "not set, but HOOKYARD_RECONCILE_INTERVAL turns reconciliation on")
    since = read.duration("HOOKYARD_RECONCILE_SINCE", 86400.0, minimum=60.0)
    if since > _EVENTS_API_HORIZON_S:
        raise ConfigError("HOOKYARD_RECONCILE_SINCE", "must be at most 30d (the Events API keeps 30 days)")
    source = read.text("HOOKYARD_RECONCILE_SOURCE", DEFAULT_SOURCE)
    if source not in sources and sources:
        raise ConfigError("HOOKYARD_RECONCILE_SOURCE", f"{source!r} is not a configured source")
    return ReconcileSettings(
        api_key=Secret(key.encode()) if key else None,
        base_url=base_url,
        interval_s=interval,
        settle_s=read.duration("HOOKYARD_RECONCILE_SETTLE", 60.0),
        since_s=since,
        source=source,
        types=read.csv("HOOKYARD_RECONCILE_TYPES"),
        organization=read.text("HOOKYARD_RECONCILE_ORGANIZATION", "") or None,
    )


def _mirror_url(read: _Reader) -> str | None:
    raw = (read.raw("HOOKYARD_MIRROR_URL") or "").strip()
    if not raw:
        return None
    # A SQLAlchemy URL names its backend before "://": sqlite:///path, postgresql+psycopg://user@host/db.
    if not re.match(r"^[a-z][a-z0-9]*(\+[a-z0-9_]+)?://", raw):
        raise ConfigError("HOOKYARD_MIRROR_URL", "expected a SQLAlchemy URL such as postgresql+psycopg://host/db")
    return raw


def _read_sources(read: _Reader, *, require_secret: bool) -> dict[str, SourceConfig]:
    # `workos` comes from WORKOS_WEBHOOK_SECRET; further senders are named in HOOKYARD_SOURCES and configured by
    # HOOKYARD_SOURCE_<NAME>_SECRETS / _TOLERANCE (NAME upper-cased, '-' as '_').
    sources: dict[str, SourceConfig] = {}
    tolerance = read.duration("HOOKYARD_SIGNATURE_TOLERANCE", 180.0, minimum=1.0)
    secrets = _parse_secrets("WORKOS_WEBHOOK_SECRET", read.text("WORKOS_WEBHOOK_SECRET", ""))
    if secrets:
        sources[DEFAULT_SOURCE] = SourceConfig(DEFAULT_SOURCE, secrets, tolerance)
    for name in read.csv("HOOKYARD_SOURCES"):
        if not _SOURCE_NAME.match(name):
            raise ConfigError("HOOKYARD_SOURCES", f"source name {name!r} must match {_SOURCE_NAME.pattern}")
        if name in sources:
            raise ConfigError("HOOKYARD_SOURCES", f"source {name!r} is listed twice")
        prefix = "HOOKYARD_SOURCE_" + name.upper().replace("-", "_")
        extra = _parse_secrets(prefix + "_SECRETS", read.text(prefix + "_SECRETS", ""))
        if not extra:
            raise ConfigError(prefix + "_SECRETS", f"source {name!r} has no secret")
        sources[name] = SourceConfig(name, extra, read.duration(prefix + "_TOLERANCE", tolerance, minimum=1.0))
    if require_secret and not sources:
        raise ConfigError("WORKOS_WEBHOOK_SECRET", "not set: no source can verify a delivery")
    return sources
