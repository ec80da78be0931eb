"""What Redis says about the processor, for `/metrics` gauges and the `hookyard` CLI: what is pending, dead and
skipped per handler, and the live workers — the counters and the handler set each publishes with its heartbeat
(`{hy:workers}:info`), so an operator sees what the running workers loaded, not what their own shell imports."""

from __future__ import annotations

import functools
import hashlib
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, cast

import orjson
import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from processor.broker import BrokerState, probe_broker
from processor.discovery import ENTRY_POINT_GROUP
from processor.handlers import HandlerSpec
from shared import keys

__all__ = [
    "BacklogCollector",
    "HandlerBacklog",
    "Snapshot",
    "WorkerInfo",
    "describe_handler",
    "hookyard_version",
    "parse_worker_info",
    "read_snapshot",
    "read_workers",
    "worker_info",
]


@dataclass(slots=True)
class HandlerBacklog:
    pending: int = 0
    dead: int = 0
    skipped: int = 0
    oldest_pending_ms: int | None = None
    #: Letters dropped by retention or the bound, by kind ("dead", "skipped"), since the store began.
    expired: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Snapshot:
    inbox: int = 0
    poison: int = 0
    workers_alive: int = 0
    #: Threads of live workers stuck in a handler call that timed out.
    abandoned_threads: int = 0
    handlers: dict[str, HandlerBacklog] = field(default_factory=dict)
    #: What each live worker published with its heartbeat, by worker id.
    workers: dict[str, WorkerInfo] = field(default_factory=dict)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


#: A worker that has not swept for this long is counted as gone.
ALIVE_MS = 15_000


def read_snapshot(client: redis.Redis, now_ms: int) -> Snapshot:
    """One consistent-enough read of every shard's counters (two round trips)."""
    pipe = client.pipeline(transaction=False)
    pipe.llen(keys.INBOX)
    pipe.llen(keys.INBOX_POISON)
    pipe.zrangebyscore(keys.WORKERS, now_ms - ALIVE_MS, "+inf")
    pipe.hgetall(keys.WORKER_INFO)
    for shard in range(keys.SHARDS):
        pipe.hgetall(keys.stats_key(shard))
    # The other inbox shards' lists (each in a slot of its own), whatever width was recorded: an empty list costs
    # nothing to ask about, and a record lost in a failover must not hide waiting events.
    for shard in range(1, keys.INBOX_SHARDS_MAX):
        pipe.llen(keys.inbox_keys(shard).queue)
    replies = pipe.execute()
    inbox = int(replies[0]) + sum(int(n) for n in replies[-(keys.INBOX_SHARDS_MAX - 1) :])
    replies = replies[: -(keys.INBOX_SHARDS_MAX - 1)]
    alive = {_text(w) for w in replies[2]}
    snapshot = Snapshot(inbox=inbox, poison=int(replies[1]), workers_alive=len(alive))
    for worker, info in replies[3].items():
        if _text(worker) in alive:
            published = snapshot.workers[_text(worker)] = parse_worker_info(info)
            snapshot.abandoned_threads += published.abandoned
    for shard_stats in replies[4:]:
        for raw_field, raw_value in shard_stats.items():
            kind, _, handler = _text(raw_field).partition(":")
            if kind == "expired":
                letter_kind, _, handler = handler.partition(":")
                expired = snapshot.handlers.setdefault(handler, HandlerBacklog()).expired
                expired[letter_kind] = expired.get(letter_kind, 0) + int(raw_value)
                continue
            backlog = snapshot.handlers.setdefault(handler, HandlerBacklog())
            if kind in ("pending", "dead", "skipped"):
                setattr(backlog, kind, getattr(backlog, kind) + int(raw_value))
    pipe = client.pipeline(transaction=False)
    names = sorted(snapshot.handlers)
    for handler in names:
        for shard in range(keys.SHARDS):
            pipe.zrange(keys.backlog_key(shard, handler), 0, 0, withscores=True)
    replies = pipe.execute()
    for i, handler in enumerate(names):
        heads = [int(row[0][1]) for row in replies[i * keys.SHARDS : (i + 1) * keys.SHARDS] if row]
        snapshot.handlers[handler].oldest_pending_ms = min(heads) if heads else None
    return snapshot


# --- what the workers publish ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """What a worker publishes with each heartbeat: its counters, its Hookyard version, the handlers it loaded."""

    #: Threads stuck in a handler call that timed out.
    abandoned: int = 0
    threads: int = 0
    hookyard: str | None = None
    #: The handlers it loaded, as `describe_handler` gives them, by name; None from a worker that does not say
    #: (one that predates handler sets).
    handlers: tuple[dict[str, Any], ...] | None = None


def worker_info(*, abandoned: int, threads: int, handlers: Iterable[dict[str, Any]]) -> dict[str, object]:
    """The record a worker's heartbeat publishes (JSON): `{"abandoned", "threads", "hookyard", "handlers"}`."""
    return {"abandoned": abandoned, "threads": threads, "hookyard": hookyard_version(), "handlers": list(handlers)}


def parse_worker_info(raw: bytes | str) -> WorkerInfo:
    """A worker's published record; what cannot be read is left at its default (an older or foreign writer)."""
    try:
        info = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return WorkerInfo()
    if not isinstance(info, dict):
        return WorkerInfo()
    handlers = info.get("handlers")
    loaded: tuple[dict[str, Any], ...] | None = None
    if isinstance(handlers, list) and all(isinstance(h, dict) and isinstance(h.get("name"), str) for h in handlers):
        loaded = tuple(sorted(handlers, key=lambda h: str(h["name"])))
    version = info.get("hookyard")
    return WorkerInfo(
        abandoned=_count(info.get("abandoned")),
        threads=_count(info.get("threads")),
        hookyard=version if isinstance(version, str) else None,
        handlers=loaded,
    )


def read_workers(client: redis.Redis, now_ms: int) -> dict[str, WorkerInfo]:
    """Every live worker (swept in the last `ALIVE_MS`) and what it published, by worker id (`host:pid`)."""
    found = cast(list[bytes], client.zrangebyscore(keys.WORKERS, now_ms - ALIVE_MS, "+inf"))
    alive = sorted(_text(w) for w in found)
    if not alive:
        return {}
    records = client.hmget(keys.WORKER_INFO, alive)
    return {worker: parse_worker_info(raw) if raw else WorkerInfo() for worker, raw in zip(alive, records, strict=True)}


def describe_handler(spec: HandlerSpec) -> dict[str, Any]:
    """A handler's registration as plain data: what a worker publishes and `hookyard handlers --json` prints.

    `version` is the version of the distribution that provides it (an entry point plugin, or Hookyard for the
    built-ins), None for a module of `HOOKYARD_HANDLERS`; `code` is a digest of its module's source file, so two
    workers running different code under the same version are told apart.
    """
    module = getattr(spec.func, "__module__", None) or ""
    return {
        "name": spec.name,
        "patterns": list(spec.patterns),
        "order_by": _order_by(spec),
        "ordered": spec.ordered,
        "late": spec.late,
        "max_attempts": spec.max_attempts,
        "min_backoff_s": spec.min_backoff_s,
        "max_backoff_s": spec.max_backoff_s,
        "timeout_s": spec.timeout_s,
        "async": spec.is_async,
        "origin": spec.origin or None,
        "module": module or None,
        "version": _origin_version(spec.origin),
        "code": _source_digest(module),
    }


def hookyard_version() -> str | None:
    """The installed Hookyard's version; None when running from a tree that was never installed."""
    try:
        return metadata.version("hookyard")
    except metadata.PackageNotFoundError:
        return None


_ENTRY_POINT_ORIGIN = "entry point "  # processor/discovery.py: "entry point <name> = <value>"


def _origin_version(origin: str) -> str | None:
    if origin.startswith("built-in"):
        return hookyard_version()
    if origin.startswith(_ENTRY_POINT_ORIGIN):
        name = origin.removeprefix(_ENTRY_POINT_ORIGIN).partition(" = ")[0]
        return _plugin_versions().get(name)
    return None


@functools.cache
def _plugin_versions() -> Mapping[str, str]:
    found = metadata.entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep.dist.version for ep in found if ep.dist is not None}


@functools.cache
def _source_digest(module: str) -> str | None:
    path = getattr(sys.modules.get(module), "__file__", None)
    if not path:
        return None
    try:
        with open(path, "rb") as source:
            return hashlib.sha256(source.read()).hexdigest()[:12]
    except OSError:
        return None


def _order_by(spec: HandlerSpec) -> str:
    if isinstance(spec.order_by, str):
        return spec.order_by
    name = getattr(spec.order_by, "__qualname__", None) or repr(spec.order_by)
    return f"callable {getattr(spec.order_by, '__module__', '?')}.{name}"


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class BacklogCollector(Collector):
    """Prometheus gauges computed from Redis (and the wake-up broker at `broker_url`) at scrape time."""

    def __init__(self, client: redis.Redis, clock_ms: Callable[[], int], broker_url: str | None = None) -> None:
        self.client = client
        self.clock_ms = clock_ms
        self.broker_url = broker_url

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        if self.broker_url is not None:
            yield from _broker_gauges(probe_broker(self.broker_url))
        up = GaugeMetricFamily("hookyard_store_up", "1 when Redis answered this scrape.")
        try:
            now = self.clock_ms()
            snapshot = read_snapshot(self.client, now)
        except (redis.ConnectionError, redis.TimeoutError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        alive = GaugeMetricFamily("hookyard_workers_alive", "Worker processes that swept in the last 15 s.")
        alive.add_metric([], snapshot.workers_alive)
        yield alive
        inbox = GaugeMetricFamily("hookyard_inbox_messages", "Accepted deliveries not yet ingested.")
        inbox.add_metric([], snapshot.inbox)
        yield inbox
        poison = GaugeMetricFamily("hookyard_inbox_poison_messages", "Inbox messages that could not be decoded.")
        poison.add_metric([], snapshot.poison)
        yield poison
        abandoned = GaugeMetricFamily(
            "hookyard_abandoned_threads", "Threads of live workers stuck in a handler call that timed out."
        )
        abandoned.add_metric([], snapshot.abandoned_threads)
        yield abandoned
        pending = GaugeMetricFamily("hookyard_pending_events", "Events waiting for a handler.", labels=["handler"])
        dead = GaugeMetricFamily("hookyard_dead_letters", "Dead letters held per handler.", labels=["handler"])
        skipped = GaugeMetricFamily(
            "hookyard_skipped_late_events", "Late events skipped and kept for replay.", labels=["handler"]
        )
        oldest = GaugeMetricFamily(
            "hookyard_oldest_pending_age_seconds",
            "Age of the oldest event waiting for the handler (0 when none).",
            labels=["handler"],
        )
        expired = CounterMetricFamily(
            "hookyard_letters_expired",
            "Dead letters and skipped late events dropped unreplayed (past HOOKYARD_DEAD_LETTER_RETENTION or "
            "beyond HOOKYARD_DEAD_LETTER_LIMIT).",
            labels=["handler", "kind"],
        )
        for handler, backlog in sorted(snapshot.handlers.items()):
            for kind in ("dead", "skipped"):
                expired.add_metric([handler, kind], backlog.expired.get(kind, 0))
            pending.add_metric([handler], backlog.pending)
            dead.add_metric([handler], backlog.dead)
            skipped.add_metric([handler], backlog.skipped)
            age = 0.0 if backlog.oldest_pending_ms is None else max(0.0, (now - backlog.oldest_pending_ms) / 1000)
            oldest.add_metric([handler], age)
        yield from (pending, dead, skipped, oldest, expired)


def _broker_gauges(state: BrokerState) -> Iterator[GaugeMetricFamily]:
    up = GaugeMetricFamily("hookyard_broker_up", "1 when the wake-up broker answered this scrape.")
    up.add_metric([], 1 if state.reachable else 0)
    yield up
    if state.queued is not None:
        queued = GaugeMetricFamily("hookyard_wakeups_queued", "Wake-up messages waiting in the broker's queue.")
        queued.add_metric([], state.queued)
        yield queued
