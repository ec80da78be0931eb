"""Reading the workers' Prometheus endpoint for `hookyard stats`: counters and the delivery-lag histogram, and what
follows from them — run rate between two scrapes, lag quantiles, the dedupe ratio, late events."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Reading", "merged_buckets", "parse", "quantile", "scrape"]

_TIMEOUT_S = 2.0


@dataclass(slots=True)
class Reading:
    """One scrape of the workers' metrics, summed over label values that `stats` does not show."""

    at_s: float
    runs: dict[str, float] = field(default_factory=dict)  # handler -> runs of any outcome
    lag_buckets: dict[str, dict[float, float]] = field(default_factory=dict)  # handler -> le -> cumulative count
    ingested: dict[str, float] = field(default_factory=dict)  # outcome (new, duplicate) -> count
    late: dict[str, dict[str, float]] = field(default_factory=dict)  # handler -> action -> count


def scrape(client: httpx.Client, url: str, at_s: float) -> Reading | str:
    """Fetch and parse the endpoint; or say why it could not be read (unreachable workers are a normal sight
    for `stats`, not an error)."""
    try:
        response = client.get(url, timeout=_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return " ".join(str(exc).split()) or type(exc).__name__
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    try:
        return parse(response.text, at_s)
    except ValueError as exc:
        return f"not Prometheus text: {exc}"


def parse(text: str, at_s: float) -> Reading:
    reading = Reading(at_s)
    runs: dict[str, float] = defaultdict(float)
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    ingested: dict[str, float] = defaultdict(float)
    late: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "hookyard_handler_runs_total":
                runs[labels.get("handler", "?")] += sample.value
            elif sample.name == "hookyard_delivery_lag_seconds_bucket":
                buckets[labels.get("handler", "?")][float(labels["le"])] += sample.value
            elif sample.name == "hookyard_events_ingested_total":
                ingested[labels.get("outcome", "?")] += sample.value
            elif sample.name == "hookyard_late_events_total":
                late[labels.get("handler", "?")][labels.get("action", "?")] += sample.value
    reading.runs = dict(runs)
    reading.lag_buckets = {handler: dict(les) for handler, les in buckets.items()}
    reading.ingested = dict(ingested)
    reading.late = {handler: dict(actions) for handler, actions in late.items()}
    return reading


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile of a cumulative histogram, interpolated within its bucket as Prometheus'
    `histogram_quantile` does; None without observations. A rank in the +Inf bucket gives the highest bound."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def merged_buckets(reading: Reading) -> dict[float, float]:
    """Every handler's lag histogram added up (the buckets are the same for all)."""
    merged: dict[float, float] = defaultdict(float)
    for les in reading.lag_buckets.values():
        for bound, count in les.items():
            merged[bound] += count
    return dict(merged)
