"""The label values Hookyard's metrics can take, where queries match them exactly."""

from __future__ import annotations

from typing import get_args

from receiver.outcome import OUTCOMES
from shared.errors import SignatureReason

# (metric, label) -> values the code produces. Handler-run outcomes and ingest outcomes are written as
# literals where they are counted (processor/runner.py, processor/ingest.py).
KNOWN_LABEL_VALUES: dict[tuple[str, str], frozenset[str]] = {
    ("hookyard_receiver_requests_total", "outcome"): frozenset(OUTCOMES),
    ("hookyard_receiver_request_duration_seconds_bucket", "outcome"): frozenset(OUTCOMES),
    ("hookyard_receiver_signature_failures_total", "reason"): frozenset(get_args(SignatureReason)),
    ("hookyard_handler_runs_total", "outcome"): frozenset({"ok", "retry", "dead", "skipped", "fenced"}),
    ("hookyard_events_ingested_total", "outcome"): frozenset({"new", "duplicate"}),
    ("hookyard_late_events_total", "action"): frozenset({"delivered", "skipped"}),
}


def unknown_label_values(matchers: set[tuple[str, str, str]]) -> list[str]:
    """`metric{label="value"}` matchers whose value the code never produces."""
    return sorted(
        f'{metric}{{{label}="{value}"}}'
        for metric, label, value in matchers
        if (metric, label) in KNOWN_LABEL_VALUES and value not in KNOWN_LABEL_VALUES[metric, label]
    )
