"""The queued message: what the receiver appends to the inbox and the worker ingests.

One line of JSON metadata, a newline, then the body exactly as received (signed bytes are never re-encoded).
A message says which channel brought the event: a signed webhook (the receiver; the header says nothing, so
messages written before channels existed read as webhooks) or the WorkOS Events API (`hookyard reconcile`,
header `"ch":"events_api"`). Both channels carry the same `source`, so dedupe by (source, event id) sees one stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from shared.errors import WireFormatError

__all__ = ["CHANNELS", "EVENTS_API", "WEBHOOK", "WIRE_VERSION", "QueuedEvent", "decode_message", "encode_message"]

WIRE_VERSION = 1
WEBHOOK = "webhook"
EVENTS_API = "events_api"
CHANNELS = (WEBHOOK, EVENTS_API)


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """A delivery the receiver accepted: verified, parsed enough to route, and stored."""

    source: str
    event_id: str
    event_type: str
    signed_at_ms: int
    received_at_ms: int
    raw: bytes
    #: How the event reached us. For an Events API copy there is no signature: `signed_at_ms` is the event's
    #: `created_at` (the time WorkOS vouches for) and `received_at_ms` the time the reconciler fetched it.
    channel: str = WEBHOOK


def encode_message(event: QueuedEvent) -> bytes:
    meta: dict[str, object] = {
        "v": WIRE_VERSION,
        "src": event.source,
        "id": event.event_id,
        "type": event.event_type,
        "sat": event.signed_at_ms,
        "rat": event.received_at_ms,
    }
    if event.channel != WEBHOOK:
        # Only when not a webhook: the receiver's messages stay byte for byte what older workers read.
        meta["ch"] = event.channel
    return orjson.dumps(meta) + b"\n" + event.raw


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
            channel=_channel(meta.get("ch", WEBHOOK)),
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


def _channel(value: object) -> str:
    if value not in CHANNELS:
        raise WireFormatError("unknown channel")
    return str(value)
