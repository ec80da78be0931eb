"""The worker's Prometheus metrics. Counters and histograms are per process (aggregated across worker processes
through prometheus_client's multiprocess mode); backlog gauges are read from Redis at scrape time
(`processor.stats`), since Redis, not any one process, knows what is pending."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["WorkerMetrics"]

_DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10, 15, 30, 60, 120, 300, 900, 3600, 21600, 86400)


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.ingested = Counter(
            "hookyard_events_ingested",
            "Events taken from the inbox, by source and outcome (new or duplicate).",
            ["source", "outcome"],
            registry=registry,
        )
        self.late = Counter(
            "hookyard_late_events",
            "Events issued before one already delivered to the handler for the same key (delivered or skipped).",
            ["handler", "action"],
            registry=registry,
        )
        self.runs = Counter(
            "hookyard_handler_runs",
            "Handler runs by outcome: ok, retry, dead, skipped, fenced.",
            ["handler", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "hookyard_handler_duration_seconds",
            "Time spent in the handler function.",
            ["handler"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.lag = Histogram(
            "hookyard_delivery_lag_seconds",
            "From the event's issued time to the handler finishing it.",
            ["handler"],
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.wakeups = Counter(
            "hookyard_wakeups_sent",
            "Wake-up messages sent to Dramatiq, by who sent them (ingest, sweep, runner).",
            ["sender"],
            registry=registry,
        )
        self.timeouts = Counter(
            "hookyard_handler_timeouts",
            "Handler calls that ran past their timeout (each counted as a failed attempt and abandoned).",
            ["handler"],
            registry=registry,
        )
        self.conflicts = Counter(
            "hookyard_event_body_conflicts",
            "Redeliveries of a known event id with a different body (the first arrival is kept).",
            ["source"],
            registry=registry,
        )
        self.future_issued = Counter(
            "hookyard_events_issued_in_future",
            "Events whose created_at lay further ahead of their receipt than the signature tolerance "
            "(ordered by their receipt time instead).",
            ["source"],
            registry=registry,
        )
        self.reconciled = Counter(
            "hookyard_reconcile_events",
            "Events the Events API reconciler fetched, by outcome: new (fed to the inbox), seen (already "
            "arrived), invalid (not an event envelope).",
            ["outcome"],
            registry=registry,
        )
        self.reconcile_requests = Counter(
            "hookyard_reconcile_requests",
            "Events API requests of the reconciler, by outcome: ok, unavailable (429, 5xx, unreachable), refused.",
            ["outcome"],
            registry=registry,
        )
        self.missed = Counter(
            "hookyard_events_missed_by_webhook",
            "Events whose first arrival came through the Events API: no webhook had delivered them.",
            ["source"],
            registry=registry,
        )
        # Label children by handler, looked up once: `labels()` takes a lock and builds a key on every call, and
        # these are counted on every run.
        self._children: dict[tuple[str, ...], Any] = {}

    def _child(self, family: str, metric: Any, *labels: str) -> Any:
        key = (family, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def count_run(self, handler: str, outcome: str) -> None:
        self._child("runs", self.runs, handler, outcome).inc()

    def observe_duration(self, handler: str, seconds: float) -> None:
        self._child("duration", self.duration, handler).observe(seconds)

    def observe_lag(self, handler: str, seconds: float) -> None:
        self._child("lag", self.lag, handler).observe(seconds)
