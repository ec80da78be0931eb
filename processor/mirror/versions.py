"""Row versions: which of two writes of the same object is newer, as one sortable string.

A version is (issued time, WorkOS `updated_at`, event id), each part fixed-width or last, so comparing the
strings compares the tuples, in SQL as in Python. The event id breaks ties, so the newest write is the same
whatever order the events arrive in; a redelivery of the same event has the same version and changes nothing.
"""

from __future__ import annotations

from datetime import datetime

__all__ = ["NO_VERSION", "version_of"]

#: The version of a row made only because another object named it (an organization known from its connection).
NO_VERSION = ""

_WIDTH = 15  # milliseconds since 1970 fit in 13 digits until the year 2286; 15 leaves room either way


def _ms(when: datetime | None) -> int:
    return max(0, int(when.timestamp() * 1000)) if when is not None else 0


def version_of(issued_at: datetime, updated_at: datetime | None, event_id: str) -> str:
    return f"{_ms(issued_at):0{_WIDTH}d}.{_ms(updated_at):0{_WIDTH}d}.{event_id}"
