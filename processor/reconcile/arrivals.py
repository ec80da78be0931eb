"""Which channel brought an event first, told at ingest: an event whose first arrival is an Events API copy is
one no webhook had delivered (a missed delivery, counted for `hookyard stats` and
`hookyard_events_missed_by_webhook_total`). An arrival of a known id through the *other* channel has other bytes
(the API's event object is not the webhook's body), so it is an expected duplicate, not a body conflict."""

from __future__ import annotations

from collections.abc import Sequence

from processor.metrics import WorkerMetrics
from processor.reconcile.state import ReconcileState
from processor.records import Admission
from shared.logging import get_logger
from shared.wire import EVENTS_API, WEBHOOK

__all__ = ["note_arrivals"]

log = get_logger("hookyard.reconcile")


def note_arrivals(
    state: ReconcileState,
    batch: Sequence[Admission],
    fresh: Sequence[bool],
    conflicts: Sequence[bool],
    now_ms: int,
    metrics: WorkerMetrics | None = None,
) -> list[bool]:
    """Record the API-first arrivals of an admitted batch; returns per item whether its body conflict (if any)
    is only the other channel's copy. Costs nothing for a batch of webhooks without conflicts."""
    expected = [False] * len(batch)
    missed: list[tuple[str, str]] = []
    suspects: list[int] = []
    for index, (item, is_new, conflict) in enumerate(zip(batch, fresh, conflicts, strict=True)):
        if item.channel == EVENTS_API:
            if is_new:
                missed.append((item.source, item.event_id))
            expected[index] = conflict  # an API copy of a delivered webhook: other bytes, same event
        elif conflict and item.channel == WEBHOOK:
            suspects.append(index)
    state.record_missed(missed, now_ms)
    for source, event_id in missed:
        log.info("event.missed_by_webhook", source=source, event_id=event_id)
        if metrics is not None:
            metrics.missed.labels(source).inc()
    if suspects:
        late = state.were_missed([(batch[i].source, batch[i].event_id) for i in suspects])
        for index, came_late in zip(suspects, late, strict=True):
            expected[index] = came_late
        state.record_late_webhooks([batch[i].source for i, came_late in zip(suspects, late, strict=True) if came_late])
    return expected
