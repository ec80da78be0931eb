"""How far behind each handler is, as one document: what Redis says (pending, oldest pending age, dead and skipped
per handler, inbox, workers) and, when the workers' metrics endpoint answers, how fast handlers run between two
scrapes and the delivery-lag quantiles. `hookyard stats` prints it; the console's overview renders it."""

from __future__ import annotations

import time
from typing import Any

import httpx
import redis

from processor.broker import BrokerState, probe_broker
from processor.cli.render import iso
from processor.cli.scrape import Reading, merged_buckets, quantile, scrape
from processor.reconcile.state import ReconcileState
from processor.stats import Snapshot, read_snapshot
from shared.clock import wall_ms
from shared.settings import Settings

__all__ = ["document", "read_metrics"]


def read_metrics(http: httpx.Client, url: str | None) -> Reading | str:
    """One scrape of the workers' endpoint at `url`, or why there is none."""
    if url is None:
        return "disabled (HOOKYARD_WORKER_METRICS_PORT=0)"
    return scrape(http, url, time.monotonic())


def document(
    client: redis.Redis, settings: Settings, url: str | None, before: Reading | str, after: Reading | str
) -> dict[str, Any]:
    """The backlog of every handler and of the inbox, with rates between the readings `before` and `after` (a
    reading is a parsed scrape, or why there is none)."""
    now_ms = wall_ms()
    snapshot = read_snapshot(client, now_ms)
    reading = after if isinstance(after, Reading) else None
    window = before if isinstance(before, Reading) and reading is not None else None
    elapsed = reading.at_s - window.at_s if reading is not None and window is not None else 0.0
    names = sorted(set(snapshot.handlers) | set(reading.runs if reading else ()))
    handlers = {name: _handler(name, snapshot, reading, window, elapsed, now_ms) for name in names}
    _mark_held(handlers, snapshot, settings.reorder_window_s)
    return {
        "at": iso(now_ms),
        "reorder_window_s": settings.reorder_window_s,
        "inbox": snapshot.inbox,
        "poison": snapshot.poison,
        "workers_alive": snapshot.workers_alive,
        "abandoned_threads": snapshot.abandoned_threads,
        "broker": _broker(probe_broker(settings.broker_url)),
        "handlers": handlers,
        "missed_by_webhook": _missed(client, now_ms),
        "metrics": _metrics(url, after, reading, window, elapsed),
    }


def _broker(state: BrokerState) -> dict[str, Any]:
    return {
        "url": state.url,
        "kind": state.kind,
        "reachable": state.reachable,
        "wakeups_queued": state.queued,
        "error": state.error,
    }


def _missed(client: redis.Redis, now_ms: int) -> dict[str, Any]:
    """Events the Events API had that no webhook delivered (their first arrival was an API copy)."""
    state = ReconcileState(client)
    tally = state.tally()
    cursor = state.cursor()
    return {
        "events": tally.missed,
        "late_webhooks": tally.late_webhooks,
        "recent": tally.recent,
        "cursor_after": cursor.after,
        "cursor_lag_s": round((now_ms - cursor.position_ms) / 1000, 1) if cursor.position_ms else None,
    }


def _handler(
    name: str, snapshot: Snapshot, reading: Reading | None, window: Reading | None, elapsed: float, now_ms: int
) -> dict[str, Any]:
    backlog = snapshot.handlers.get(name)
    oldest = backlog.oldest_pending_ms if backlog else None
    entry: dict[str, Any] = {
        "pending": backlog.pending if backlog else 0,
        "oldest_pending_age_s": max(0.0, (now_ms - oldest) / 1000) if oldest is not None else None,
        "dead": backlog.dead if backlog else 0,
        "skipped": backlog.skipped if backlog else 0,
        "expired": dict(backlog.expired) if backlog else {},
    }
    if reading is not None:
        buckets = reading.lag_buckets.get(name, {})
        late = reading.late.get(name, {})
        entry.update(
            runs_per_s=_rate(reading.runs.get(name, 0.0), window.runs.get(name, 0.0) if window else None, elapsed),
            lag_p50_s=_seconds(quantile(0.5, buckets)),
            lag_p99_s=_seconds(quantile(0.99, buckets)),
            late_delivered=int(late.get("delivered", 0)),
            late_skipped=int(late.get("skipped", 0)),
        )
    return entry


def _mark_held(handlers: dict[str, dict[str, Any]], snapshot: Snapshot, window_s: float) -> None:
    # An ordered handler's newest events wait out the hold-back window before they may run (an earlier event may
    # still arrive): an oldest pending event younger than the window is held, not stuck. Handlers that run
    # events at once (order_by="none", as the live workers say) have no window.
    unordered = {
        str(handler["name"])
        for info in snapshot.workers.values()
        for handler in info.handlers or ()
        if handler.get("ordered") is False
    }
    for name, entry in handlers.items():
        oldest = entry["oldest_pending_age_s"]
        entry["held_by_window"] = oldest is not None and oldest <= window_s and name not in unordered


def _metrics(
    url: str | None, after: Reading | str, reading: Reading | None, window: Reading | None, elapsed: float
) -> dict[str, Any]:
    if reading is None:
        return {"url": url, "reachable": False, "error": after}
    new = reading.ingested.get("new", 0.0)
    duplicates = reading.ingested.get("duplicate", 0.0)
    merged = merged_buckets(reading)
    return {
        "url": url,
        "reachable": True,
        "error": None,
        "runs_per_s": _rate(sum(reading.runs.values()), sum(window.runs.values()) if window else None, elapsed),
        "lag_p50_s": _seconds(quantile(0.5, merged)),
        "lag_p99_s": _seconds(quantile(0.99, merged)),
        "ingested_new": int(new),
        "ingested_duplicate": int(duplicates),
        "dedupe_ratio": round(duplicates / (new + duplicates), 4) if new + duplicates else None,
        "late_delivered": int(sum(x.get("delivered", 0) for x in reading.late.values())),
        "late_skipped": int(sum(x.get("skipped", 0) for x in reading.late.values())),
    }


def _rate(now: float, before: float | None, elapsed: float) -> float | None:
    if before is None or elapsed <= 0:
        return None
    # A counter that went down means a worker restarted: what it counted since is all we know for this window.
    return round(max(0.0, now - before if now >= before else now) / elapsed, 2)


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
