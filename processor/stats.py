"""What is pending, dead and skipped per handler, read from Redis: for `/metrics` gauges and `hookyard stats`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import orjson
import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from shared import keys

__all__ = ["BacklogCollector", "HandlerBacklog", "Snapshot", "read_snapshot"]


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
    replies = pipe.execute()
    alive = {_text(w) for w in replies[2]}
    snapshot = Snapshot(inbox=int(replies[0]), poison=int(replies[1]), workers_alive=len(alive))
    for worker, info in replies[3].items():
        if _text(worker) in alive:
            snapshot.abandoned_threads += parse_worker_info(info).get("abandoned", 0)
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


def parse_worker_info(raw: bytes | str) -> dict[str, int]:
    """A worker's published counters (`{"abandoned": n, "threads": n}`); empty when unreadable."""
    try:
        info = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(info, dict):
        return {}
    return {str(k): int(v) for k, v in info.items() if isinstance(v, int)}


class BacklogCollector(Collector):
    """Prometheus gauges computed from Redis at scrape time."""

    def __init__(self, client: redis.Redis, clock_ms: Callable[[], int]) -> None:
        self.client = client
        self.clock_ms = clock_ms

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
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
