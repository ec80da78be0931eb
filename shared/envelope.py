"""The WorkOS event envelope (`{"id", "event", "data", ...}`) parsed leniently from a verified body.

Only what routing needs is required; optional fields that are missing or oddly typed become `None`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shared.errors import EnvelopeError

__all__ = [
    "Envelope",
    "issued_at_ms",
    "parse_created_at",
    "parse_envelope",
    "parse_routing",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
# Longer than any ISO-8601 timestamp ("2024-07-31T16:35:01.539123456+05:30" is 35); cheap rejection of junk.
_MAX_CREATED_AT_LENGTH = 64


@dataclass(frozen=True, slots=True)
class Envelope:
    """One WorkOS event: `type` is the envelope's `event` field (e.g. `dsync.user.created`)."""

    id: str
    type: str
    data: dict[str, Any]
    created_at: datetime | None
    object: str | None
    context: dict[str, Any] | None


def parse_routing(body: bytes) -> tuple[str, str, dict[str, Any]]:
    """Just what the receiver needs on its hot path: `(id, event type, document)`, validated as
    `parse_envelope` validates them (same `EnvelopeError` reasons), without building an `Envelope`."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        # orjson reports invalid UTF-8 as a JSONDecodeError too; the detail never echoes body content.
        raise EnvelopeError("not_json", "body is not UTF-8 JSON") from exc
    if not isinstance(document, dict):
        raise EnvelopeError("not_object", f"top level is a JSON {type(document).__name__}")
    event_id = document.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise EnvelopeError("missing_id", "id must be a non-empty string")
    event_type = document.get("event")
    if not isinstance(event_type, str) or not event_type:
        raise EnvelopeError("missing_event", "event must be a non-empty string")
    if not isinstance(document.get("data"), dict):
        raise EnvelopeError("bad_data", "data must be an object")
    return event_id, event_type, document


def parse_envelope(body: bytes) -> Envelope:
    """Parse a webhook body into an `Envelope`, or raise `EnvelopeError` naming the first missing piece."""
    event_id, event_type, document = parse_routing(body)
    data: dict[str, Any] = document["data"]
    kind = document.get("object")
    context = document.get("context")
    return Envelope(
        id=event_id,
        type=event_type,
        data=data,
        created_at=parse_created_at(document.get("created_at")),
        object=kind if isinstance(kind, str) else None,
        context=context if isinstance(context, dict) else None,
    )


def parse_created_at(value: object) -> datetime | None:
    """Read an ISO-8601 timestamp as an aware UTC datetime (naive means UTC); anything else gives `None`.

    Lenient on purpose: the event is already signed, so an odd timestamp must not make us drop it; the
    caller falls back to the signing time (`issued_at_ms`).
    """
    if not isinstance(value, str) or len(value) > _MAX_CREATED_AT_LENGTH:
        return None
    try:
        # Python 3.11's fromisoformat reads "Z", offsets, and the space-separated form WorkOS's docs show.
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        # OverflowError: an offset that pushes year 1 or 9999 out of datetime's range.
        return None


def issued_at_ms(created_at: datetime | None, signed_at_ms: int) -> int:
    """When the event happened, in unix ms: its `created_at` if known, else the time WorkOS signed it."""
    if created_at is None:
        return signed_at_ms
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    # timedelta // timedelta is exact integer arithmetic; a float timestamp() could be off by one ms.
    return (created_at - _EPOCH) // _ONE_MS
