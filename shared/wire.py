"""The queued message: what the receiver appends to the inbox and the worker ingests.

One line of JSON metadata, a newline, then the body exactly as received (signed bytes are never re-encoded).
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from shared.errors import WireFormatError

__all__ = ["WIRE_VERSION", "QueuedEvent", "decode_message", "encode_message"]

WIRE_VERSION = 1


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """A delivery the receiver accepted: verified, parsed enough to route, and stored."""

    source: str
    event_id: str
    event_type: str
    signed_at_ms: int
    received_at_ms: int
    raw: bytes


def encode_message(event: QueuedEvent) -> bytes:
    head = orjson.dumps(
        {
            "v": WIRE_VERSION,
            "src": event.source,
            "id": event.event_id,
            "type": event.event_type,
            "sat": event.signed_at_ms,
            "rat": event.received_at_ms,
        }
    )
    return head + b"\n" + event.raw


def decode_message(message: bytes) -> QueuedEvent:
    head, sep, raw = message.partition(b"\n")
    if not sep:
        raise WireFormatError("no header line")
    try:
        meta = orjson.loads(head)
    except orjson.JSONDecodeError as exc:
        raise WireFormatError(f"header is not JSON: {exc}") from None
    if not isinstance(meta, dict) or meta.get("v") != WIRE_VERSION:
        raise WireFormatError("unknown wire version")
    try:
        return QueuedEvent(
            source=_str(meta["src"]),
            event_id=_str(meta["id"]),
            event_type=_str(meta["type"]),
            signed_at_ms=_int(meta["sat"]),
            received_at_ms=_int(meta["rat"]),
            raw=raw,
        )
    except KeyError as exc:
        raise WireFormatError(f"header lacks {exc.args[0]!r}") from None


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise WireFormatError("expected a string field")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise WireFormatError("expected an integer field")
    return value
