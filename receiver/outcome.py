"""What happened to one webhook request: the outcome vocabulary and the record the endpoint fills.

The endpoint writes a `RequestRecord` into the ASGI scope; metrics and the access log read it, so neither has
to re-derive the outcome from a status code.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "OUTCOMES",
    "REQUEST_RECORD",
    "UNKNOWN_SOURCE_LABEL",
    "Outcome",
    "RequestRecord",
]

Outcome = Literal[
    "accepted",
    "unknown_source",
    "too_large",
    "invalid_signature",
    "invalid_event",
    "store_unavailable",
    "method_not_allowed",
    # The client went away before its body arrived; nothing was answered.
    "disconnected",
    # A bug in the receiver (never caused by input): 500.
    "internal_error",
    # The request task was cancelled (a shutdown past its grace period) before it answered.
    "cancelled",
]

#: Every outcome, in the order above (metrics pre-create a series for each).
OUTCOMES: Final[tuple[Outcome, ...]] = get_args(Outcome)

#: The `source` label of requests to a path that names no configured source: attacker-chosen path segments
#: must never become label values (each would be a new time series).
UNKNOWN_SOURCE_LABEL: Final = "unknown"

#: Scope key under which the webhook endpoint leaves its `RequestRecord`.
REQUEST_RECORD: Final = "hookyard.request"


class RequestRecord:
    """The facts about one webhook request that are safe to log: never a secret, a signature or the body."""

    __slots__ = (
        "body_bytes",
        "duration_s",
        "event_id",
        "event_type",
        "outcome",
        "reason",
        "received_at_ms",
        "signed_at_ms",
        "source",
        "status",
    )

    def __init__(self, source: str, received_at_ms: int) -> None:
        self.source = source  # a configured source name or UNKNOWN_SOURCE_LABEL
        self.received_at_ms = received_at_ms
        self.outcome: Outcome | None = None
        self.status: int | None = None
        self.reason: str | None = None
        self.event_id: str | None = None
        self.event_type: str | None = None
        self.signed_at_ms: int | None = None
        self.body_bytes = 0
        self.duration_s = 0.0
