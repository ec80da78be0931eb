"""From stored bytes to the `Event` a handler sees (one place, so ingest and runs build it identically)."""

from __future__ import annotations

from dataclasses import replace

from processor.event import Event, from_ms
from shared.envelope import issued_at_ms, parse_envelope
from shared.wire import QueuedEvent, decode_message

__all__ = ["event_from_message", "event_from_queued"]


def event_from_queued(queued: QueuedEvent) -> tuple[Event, int]:
    """The event of a queued message and its issued time in ms; raises EnvelopeError if the body is unusable."""
    envelope = parse_envelope(queued.raw)
    issued_ms = issued_at_ms(envelope.created_at, queued.signed_at_ms)
    event = Event(
        id=envelope.id,
        type=envelope.type,
        data=envelope.data,
        source=queued.source,
        created_at=envelope.created_at,
        signed_at=from_ms(queued.signed_at_ms),
        issued_at=from_ms(issued_ms),
        received_at=from_ms(queued.received_at_ms),
        raw=queued.raw,
    )
    return event, issued_ms


def event_from_message(message: bytes, *, late: bool, attempt: int) -> Event:
    """The event a handler receives, from the queued message kept with its pending run."""
    event, _ = event_from_queued(decode_message(message))
    return replace(event, late=late, attempt=attempt)
