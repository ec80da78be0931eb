"""Signed WorkOS deliveries for load: realistic bodies (processor/devtools/samples.py), signed as WorkOS signs
them, as HTTP requests for the load generators or as inbox messages exactly as the receiver stores them."""

from __future__ import annotations

import heapq
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson

from processor.devtools.samples import sample_event
from shared.signature import sign
from shared.wire import QueuedEvent, encode_message

__all__ = [
    "EVENT_TYPE",
    "SECRET",
    "SOURCE",
    "WEBHOOK_PATH",
    "Delivery",
    "http_request",
    "inbox_messages",
    "now_ms",
    "signed_delivery",
]

#: The benchmark's throwaway signing secret, shared by every contender.
SECRET = "whsec_bench_0123456789abcdef"
SOURCE = "workos"
WEBHOOK_PATH = "/webhooks/workos"
#: ≈1.2 KB: a Directory Sync user with SCIM attributes, the most common WorkOS event a receiver sees.
EVENT_TYPE = "dsync.user.created"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST as WorkOS sends it: the exact body and its `WorkOS-Signature` value."""

    body: bytes
    signature: str


def signed_delivery(event: dict[str, object], *, signed_at_ms: int | None = None) -> Delivery:
    body = orjson.dumps(event)
    return Delivery(body, sign(body, SECRET.encode(), now_ms() if signed_at_ms is None else signed_at_ms))


def http_request(delivery: Delivery, port: int) -> bytes:
    """The HTTP/1.1 keep-alive request bytes of `delivery` to 127.0.0.1:`port`."""
    head = (
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"WorkOS-Signature: {delivery.signature}\r\n"
        f"Content-Length: {len(delivery.body)}\r\n"
        "\r\n"
    )
    return head.encode() + delivery.body


def inbox_messages(
    events: int, *, resources: int, received_ms: int, duplicate_share: float = 0.0, seed: int = 1
) -> Iterator[bytes]:
    """`events` distinct events over `resources` users, issued in increasing `created_at`, encoded exactly as the
    receiver appends them to the inbox; `duplicate_share` of them are delivered a second time a little later."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(seconds=events // 100 + 60)
    users = [f"directory_user_{seed:02d}{i:06d}" for i in range(resources)]
    duplicates: list[tuple[int, int, bytes]] = []  # heap of (due after event index, tie-break, message)
    for i in range(events):
        created = start + timedelta(milliseconds=10 * i)
        event = sample_event(EVENT_TYPE, rng=rng, resource_id=users[rng.randrange(resources)], created_at=created)
        event_id = str(event["id"])
        body = orjson.dumps(event)
        message = encode_message(
            QueuedEvent(SOURCE, event_id, EVENT_TYPE, int(created.timestamp() * 1000), received_ms, body)
        )
        yield message
        if rng.random() < duplicate_share:
            # A redelivery comes some deliveries later, byte-identical: dedupe is by event id.
            heapq.heappush(duplicates, (i + rng.randrange(1, 200), i, message))
        while duplicates and duplicates[0][0] <= i:
            yield heapq.heappop(duplicates)[2]
    while duplicates:
        yield heapq.heappop(duplicates)[2]
