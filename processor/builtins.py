"""Built-in handler that logs every event it receives (on in `hookyard dev`, `HOOKYARD_LOG_EVENTS=true`)."""

from __future__ import annotations

from processor.event import Event
from processor.handlers import handler
from shared.logging import get_logger

__all__ = ["log_events"]

log = get_logger("hookyard.events")


@handler("*", name="hookyard.log_events", order_by="none")
def log_events(event: Event) -> None:
    log.info(
        "event.handled",
        source=event.source,
        event_id=event.id,
        event_type=event.type,
        issued_at=event.issued_at.isoformat(),
        resource_id=event.data.get("id"),
        late=event.late,
        attempt=event.attempt,
    )
