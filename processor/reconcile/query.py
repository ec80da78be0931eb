"""What the reconciler asks the Events API and what a page holds, apart from the SDK that asks it (importing the
workos SDK takes half a second, which the CLI and the workers pay only when they reconcile)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["PAGE_LIMIT", "ApiPage", "EventsQuery", "api_time"]

#: The most events the Events API returns per page.
PAGE_LIMIT = 100


@dataclass(frozen=True, slots=True)
class EventsQuery:
    """What to list: event types (required by the API), an organization, a creation-time range (unix ms)."""

    types: tuple[str, ...]
    organization: str | None = None
    range_start_ms: int | None = None
    range_end_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ApiPage:
    """One page: its events as WorkOS sent them (oldest first), and the cursor of the next page (None: the end)."""

    events: list[dict[str, Any]]
    after: str | None


def api_time(ms: int) -> str:
    """A time as the Events API takes it: ISO 8601 UTC with a `Z` suffix (it refuses `+00:00`)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
