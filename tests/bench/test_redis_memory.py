"""The Redis memory step's pure parts (bench/redis_memory.py): key kinds and sized bodies."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.redis_memory import CASES, KINDS, MemoryCase, case_messages, key_kind, sized_body
from shared import keys
from shared.envelope import parse_envelope
from shared.wire import decode_message


def test_every_key_template_has_its_kind() -> None:
    # Given one key of every template in shared/keys.py
    event = keys.event_keys("workos", "event_01")
    pair = keys.pair_keys(3, keys.pair_id("h", "workos", "directory_user_01"))
    found = {
        event.seen: "seen",
        event.archive: "ev",
        event.index: "events",
        pair.got_prefix + "event_01": "got",
        pair.pair: "pair",
        pair.queue: "q",
        pair.state: "st",
        pair.body: "body",
        pair.due: "due",
        pair.stats: "stats",
        keys.backlog_key(3, "bench.memory.handler_0"): "backlog",
        keys.INBOX: "inbox",
        keys.INBOX_LEASE: "inbox",
        "bench:done": "other",
    }

    # Then each is classified as the kind the report labels
    for name, kind in found.items():
        assert key_kind(name.encode()) == kind, name
        assert kind in KINDS


def test_bodies_have_the_size_asked_and_parse_as_events() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)

    for size in {case.body_bytes for case in CASES}:
        body = sized_body("event_01HXYZ", "directory_user_01HXYZ", created, size)

        assert len(body) == size
        envelope = parse_envelope(body)
        assert (envelope.id, envelope.data["id"], envelope.created_at) == (
            "event_01HXYZ",
            "directory_user_01HXYZ",
            created,
        )

    with pytest.raises(ValueError, match="at least"):
        sized_body("event_01HXYZ", "directory_user_01HXYZ", created, 100)


def test_case_messages_spread_events_over_their_resources_in_created_order() -> None:
    # Given 4 events per resource
    messages = [decode_message(m) for m in case_messages(MemoryCase(400, 2, 4), 40, received_ms=1_767_225_600_000)]

    envelopes = [parse_envelope(m.raw) for m in messages]
    assert len({e.data["id"] for e in envelopes}) == 10
    assert len({e.id for e in envelopes}) == 40
    created_ms = [int(e.created_at.timestamp() * 1000) for e in envelopes if e.created_at is not None]
    assert created_ms == sorted(created_ms)
    assert len(created_ms) == 40
    assert max(created_ms) < min(m.received_at_ms for m in messages)
