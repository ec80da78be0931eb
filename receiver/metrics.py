"""The receiver's Prometheus metrics, in a registry of their own, and the `/metrics` endpoint exposing them.

Each app gets its own `CollectorRegistry` (tests build several apps in one process). Label values are bounded
by construction — a source label is a configured source name or `unknown`, never a path segment.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString
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


def _le(bound: float) -> str:
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


class _Histogram:
    """Bucket counts and a sum as plain numbers: observed on the event loop, exported at scrape time."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last slot is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        # bisect_left: the first bound >= value, i.e. Prometheus's `le` bucket.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def export(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        running = 0
        buckets = []
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append((_le(bound), running))
        family.add_metric(labels, buckets, self.total)
        if self.bounds[0] < 0:
            # prometheus_client leaves out _count and _sum when a bucket is negative; the signature age has
            # negative buckets on purpose (clock skew), and its count and sum are still meaningful.
            names = dict(zip(family._labelnames, labels, strict=True))
            family.samples.append(Sample(family.name + "_count", names, running))
            family.samples.append(Sample(family.name + "_sum", names, self.total))


class ReceiverMetrics(Collector):
    """Every receiver metric, kept as plain numbers and turned into Prometheus families at scrape time.

    prometheus_client's own metric objects take a lock and resolve labels on every update; on the receiver's one
    hot path that cost as much as the access log. The receiver updates these only from its event loop, which
    also serves `/metrics`, so no lock is needed. Label values are bounded by construction.
    """

    def __init__(self, sources: Iterable[str]) -> None:
        labels = (*sources, UNKNOWN_SOURCE_LABEL)
        self._requests = {(s, o): 0 for s in labels for o in OUTCOMES}
        self._duration = {o: _Histogram(_LATENCY_BUCKETS) for o in OUTCOMES}
        self._failures = {(s, r): 0 for s in labels for r in _SIGNATURE_REASONS}
        self._enqueue_duration = _Histogram(_LATENCY_BUCKETS)
        self._enqueue_batch_size = _Histogram(_BATCH_BUCKETS)
        self._body_bytes = _Histogram(_BODY_BUCKETS)
        self._signature_age = _Histogram(_AGE_BUCKETS)
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def observe_request(self, record: RequestRecord) -> None:
        """Count one finished webhook request."""
        outcome: Outcome = record.outcome or "cancelled"
        self._requests[record.source, outcome] += 1
        self._duration[outcome].observe(record.duration_s)
        if record.body_bytes:
            self._body_bytes.observe(record.body_bytes)
        if record.signed_at_ms is not None:
            self._signature_age.observe((record.received_at_ms - record.signed_at_ms) / 1000.0)

    def observe_signature_failure(self, source: str, reason: SignatureReason) -> None:
        self._failures[source, reason] += 1

    def observe_enqueue(self, batch_size: int, duration_s: float) -> None:
        self._enqueue_batch_size.observe(batch_size)
        self._enqueue_duration.observe(duration_s)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "hookyard_receiver_requests", "Webhook requests by source and outcome.", labels=("source", "outcome")
        )
        for (source, outcome), count in self._requests.items():
            requests.add_metric([source, outcome], count)
        yield requests
        duration = HistogramMetricFamily(
            "hookyard_receiver_request_duration_seconds",
            "Time from the first byte of a webhook request reaching the app to its answer, by outcome.",
            labels=("outcome",),
        )
        for outcome, histogram in self._duration.items():
            histogram.export(duration, [outcome])
        yield duration
        failures = CounterMetricFamily(
            "hookyard_receiver_signature_failures", "Rejected signatures by source and reason.",
            labels=("source", "reason"),
        )  # fmt: skip
        for (source, reason), count in self._failures.items():
            failures.add_metric([source, reason], count)
        yield failures
        # Each family spelled out with its literal name: tests/deploy checks dashboards and alerts against them.
        singles = (
            (HistogramMetricFamily("hookyard_receiver_enqueue_duration_seconds",
                                   "Time of one inbox write (one Redis round trip carrying a batch of events)."),
             self._enqueue_duration),
            (HistogramMetricFamily("hookyard_receiver_enqueue_batch_size", "Events carried by one inbox write."),
             self._enqueue_batch_size),
            (HistogramMetricFamily("hookyard_receiver_body_bytes",
                                   "Size of webhook bodies read (up to the first byte over the limit)."),
             self._body_bytes),
            (HistogramMetricFamily("hookyard_receiver_signature_age_seconds",
                                   "Receive time minus signing time of verified deliveries; negative: the sender's "
                                   "clock is ahead."),
             self._signature_age),
        )  # fmt: skip
        for family, histogram in singles:
            histogram.export(family, [])
            yield family

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
