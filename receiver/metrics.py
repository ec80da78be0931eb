"""The receiver's Prometheus metrics, in a registry of their own, and the `/metrics` endpoint exposing them.

Each app gets its own `CollectorRegistry` (tests build several apps in one process). Label children are
resolved once up front: the hot path does a dict lookup instead of `labels()`, and label values are bounded by
construction — a source label is a configured source name or `unknown`, never a path segment.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import Receive, Scope, Send

from receiver.outcome import OUTCOMES, UNKNOWN_SOURCE_LABEL, Outcome, RequestRecord
from shared.errors import SignatureReason

__all__ = ["MetricsEndpoint", "ReceiverMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
_BODY_BUCKETS = (256, 1024, 4096, 16384, 65536, 262144, 1 << 20, 4 << 20, 16 << 20, 64 << 20)
# Negative ages are signatures from the future (sender clock ahead of ours); the default tolerance is ±180 s.
_AGE_BUCKETS = (-180.0, -60.0, -30.0, -10.0, -5.0, -1.0, 0.0, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 180.0)
_SIGNATURE_REASONS: tuple[SignatureReason, ...] = (
    "missing_header",
    "malformed_header",
    "stale",
    "future",
    "mismatch",
)


class ReceiverMetrics:
    """Every receiver metric, in `registry`, with label children pre-resolved for the configured sources."""

    def __init__(self, sources: Iterable[str]) -> None:
        self.registry = CollectorRegistry()
        labels = (*sources, UNKNOWN_SOURCE_LABEL)
        requests = Counter(
            "hookyard_receiver_requests",
            "Webhook requests by source and outcome.",
            ("source", "outcome"),
            registry=self.registry,
        )
        duration = Histogram(
            "hookyard_receiver_request_duration_seconds",
            "Time from the first byte of a webhook request reaching the app to its answer, by outcome.",
            ("outcome",),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        failures = Counter(
            "hookyard_receiver_signature_failures",
            "Rejected signatures by source and reason.",
            ("source", "reason"),
            registry=self.registry,
        )
        self.enqueue_duration = Histogram(
            "hookyard_receiver_enqueue_duration_seconds",
            "Time of one inbox write (one Redis round trip carrying a batch of events).",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.enqueue_batch_size = Histogram(
            "hookyard_receiver_enqueue_batch_size",
            "Events carried by one inbox write.",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.body_bytes = Histogram(
            "hookyard_receiver_body_bytes",
            "Size of webhook bodies read (up to the first byte over the limit).",
            buckets=_BODY_BUCKETS,
            registry=self.registry,
        )
        self.signature_age = Histogram(
            "hookyard_receiver_signature_age_seconds",
            "Receive time minus signing time of verified deliveries; negative: the sender's clock is ahead.",
            buckets=_AGE_BUCKETS,
            registry=self.registry,
        )
        self._requests = {(s, o): requests.labels(s, o) for s in labels for o in OUTCOMES}
        self._duration = {o: duration.labels(o) for o in OUTCOMES}
        self._failures = {(s, r): failures.labels(s, r) for s in labels for r in _SIGNATURE_REASONS}

    def observe_request(self, record: RequestRecord) -> None:
        """Count one finished webhook request."""
        outcome: Outcome = record.outcome or "cancelled"
        self._requests[record.source, outcome].inc()
        self._duration[outcome].observe(record.duration_s)
        if record.body_bytes:
            self.body_bytes.observe(record.body_bytes)
        if record.signed_at_ms is not None:
            self.signature_age.observe((record.received_at_ms - record.signed_at_ms) / 1000.0)

    def observe_signature_failure(self, source: str, reason: SignatureReason) -> None:
        self._failures[source, reason].inc()

    def observe_enqueue(self, batch_size: int, duration_s: float) -> None:
        self.enqueue_batch_size.observe(batch_size)
        self.enqueue_duration.observe(duration_s)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


class MetricsEndpoint:
    """`GET /metrics`: the Prometheus text exposition of one app's registry."""

    def __init__(self, metrics: ReceiverMetrics) -> None:
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self._metrics.exposition()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", CONTENT_TYPE_LATEST.encode()),
                    (b"content-length", b"%d" % len(body)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
