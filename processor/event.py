"""`Event`: what a handler receives — one WorkOS event, with when it was issued, signed and received."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
    lease_check: Callable[[], bool] | None = field(default=None, repr=False, compare=False)

    def lease_held(self) -> bool:
        """True while this run still owns the event: its lease is renewed and its timeout has not passed.

        A call that outlives its lease (the worker was paused, Redis was unreachable, the call passed its
        `timeout`) may overlap a newer run of the same event by another worker. A slow handler can check this
        right before an effect that must not happen twice, and return or raise instead. Always True outside a
        worker (in tests that build an `Event` by hand).
        """
        return self.lease_check is None or self.lease_check()
