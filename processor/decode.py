"""From stored bytes to the `Event` a handler sees (one place, so ingest and runs build it identically)."""

from __future__ import annotations

from collections.abc import Callable

from processor.event import Event, from_ms
from shared.envelope import issued_at_ms, parse_envelope
from shared.wire import QueuedEvent, decode_message

__all__ = ["bound_issued_ms", "event_from_message", "event_from_queued"]


def event_from_queued(
    queued: QueuedEvent,
    *,
    issued_ms: int | None = None,
    late: bool = False,
    attempt: int = 1,
    lease_check: Callable[[], bool] | None = None,
) -> tuple[Event, int]:
    """The event of a queued message and its issued time in ms (the given `issued_ms`, the position it was queued
    at, or else computed from the envelope); raises EnvelopeError if the body is unusable."""
    envelope = parse_envelope(queued.raw)
    if issued_ms is None:
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
        late=late,
        attempt=attempt,
        lease_check=lease_check,
    )
    return event, issued_ms


def bound_issued_ms(issued_ms: int, received_at_ms: int, future_tolerance_ms: int) -> int:
    """The issued time to order by: the event's own, unless it lies further ahead of its receipt than the
    signature tolerance allows a clock to be off. Such a `created_at` cannot be true, and trusting it would make
    every later event of its key look late; the receipt time stands in for it."""
    if issued_ms > received_at_ms + future_tolerance_ms:
        return received_at_ms
    return issued_ms


def event_from_message(
    message: bytes,
    *,
    late: bool,
    attempt: int,
    issued_at_ms: int,
    lease_check: Callable[[], bool] | None = None,
) -> Event:
    """The event a handler receives, from the queued message kept with its pending run. `issued_at_ms` is the
    position it was queued at (the bounded issued time), so the handler sees the time it was ordered by."""
    # Built once, with everything (a `replace` afterwards would build it twice: measurable per event).
    event, _ = event_from_queued(
        decode_message(message), issued_ms=issued_at_ms, late=late, attempt=attempt, lease_check=lease_check
    )
    return event
