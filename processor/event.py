"""`Event`: what a handler receives — one WorkOS event, with when it was issued, signed and received."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["Event", "from_ms"]


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class Event:
    """One delivery of a WorkOS event to one handler.

    `issued_at` is the event's own `created_at` when the sender gave one, else `signed_at`: the signature time is
    re-stamped on every delivery attempt, so it says when a delivery was sent, not when the event happened.
    `late` is true when an event issued after this one was already delivered to this handler for the same
    ordering key. `attempt` counts this handler's attempts at this event, from 1.
    """

    id: str
    type: str
    data: dict[str, Any]
    source: str
    created_at: datetime | None
    signed_at: datetime
    issued_at: datetime
    received_at: datetime
    raw: bytes
    late: bool = False
    attempt: int = 1
