"""The Prometheus series names Hookyard's code exposes, read from its source, and the ones a query uses.

A metric is declared as `Counter("hookyard_…", …)`, `Histogram(…)`, `Gauge(…)` or a `…MetricFamily(…)` of a
custom collector; the exposed series names follow from the type (a counter `x` is scraped as `x_total`, a
histogram as `x_bucket`, `x_sum`, `x_count`).
"""

from __future__ import annotations

import ast
import re
from functools import cache

from tests.deploy.paths import ROOT

_PACKAGES = ("receiver", "processor", "shared")
_SUFFIXES = {
    "Counter": ("_total", "_created"),
    "CounterMetricFamily": ("_total",),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "HistogramMetricFamily": ("_bucket", "_sum", "_count"),
    "Summary": ("", "_sum", "_count", "_created"),
    "SummaryMetricFamily": ("", "_sum", "_count"),
    "Gauge": ("",),
    "GaugeMetricFamily": ("",),
}
_METRIC_NAME = re.compile(r"\bhookyard_[a-z0-9_]+\b")


@cache
def exposed_metric_names() -> frozenset[str]:
    """Every `hookyard_*` series name the receiver and the workers can expose."""
    names: set[str] = set()
    for package in _PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                kind = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                first = node.args[0]
                if kind not in _SUFFIXES or not isinstance(first, ast.Constant) or not isinstance(first.value, str):
                    continue
                if not first.value.startswith("hookyard_"):
                    continue
                # prometheus_client accepts a counter named with its `_total` and strips it.
                base = first.value.removesuffix("_total") if kind.startswith("Counter") else first.value
                names.update(base + suffix for suffix in _SUFFIXES[kind])
    return frozenset(names)


def metric_names_in(query: str) -> set[str]:
    """The `hookyard_*` names a PromQL expression mentions."""
    return set(_METRIC_NAME.findall(query))


_SELECTOR = re.compile(r"\b(hookyard_[a-z0-9_]+)\s*\{([^}]*)\}")
_EQUALITY = re.compile(r'\b([a-zA-Z_]\w*)\s*(=~|!=|!~|=)\s*"([^"]*)"')


def exact_label_matchers(query: str) -> set[tuple[str, str, str]]:
    """(metric, label, value) of every `label="value"` matcher on a `hookyard_*` selector in `query`."""
    found: set[tuple[str, str, str]] = set()
    for metric, matchers in _SELECTOR.findall(query):
        for label, op, value in _EQUALITY.findall(matchers):
            if op == "=":
                found.add((metric, label, value))
    return found
