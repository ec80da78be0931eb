"""Dedupe by (source, event id) for every handler: redeliveries with another body, a changed `order_by`, and a
crash between recording an arrival and queueing it (processor/routing.py, Store.admit)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from processor import Event, Registry
from processor.routing import Target, decode_routes, encode_routes
from processor.testing import Harness
from shared.errors import StoreUnavailable

T0 = "2026-01-01T00:00:"


def envelope(eid: str, second: int, rid: str = "user_1", **data: Any) -> dict[str, Any]:
    return {"id": eid, "event": "dsync.user.updated", "data": {"id": rid, **data}, "created_at": f"{T0}{second:02d}Z"}


def test_routes_round_trip() -> None:
    targets = (Target.of("a.b", "workos", "user|1,\x1f", True), Target.of("c", "workos", "event:x", False))
    assert decode_routes("workos", encode_routes(targets)) == targets
    with pytest.raises(ValueError, match="routes"):
        decode_routes("workos", b"1700000000000")


def test_a_redelivery_with_another_body_runs_no_handler_again(registry: Registry, yard: Harness) -> None:
    seen: list[tuple[str, str]] = []
    registry.handler("dsync.*")(lambda e: seen.append((e.id, e.data["id"])))
    registry.handler("dsync.*", name="unordered", order_by="none")(lambda e: seen.append(("u", e.data["id"])))
    # Given an event handled once
    yard.deliver(envelope("event_1", 1, "user_1"))
    yard.run()
    # When the same id comes again with another resource (another ordering key) and another state, before and
    # after a run
    yard.deliver(envelope("event_1", 1, "user_2", state="inactive"))
    yard.run()
    yard.deliver(envelope("event_1", 1, "user_3"))
    yard.deliver(envelope("event_1", 1, "user_3"))
    yard.run()
    # Then each handler saw the first body, once
    assert sorted(seen) == [("event_1", "user_1"), ("u", "user_1")]


def test_a_conflicting_redelivery_in_the_same_batch_keeps_the_first(registry: Registry, yard: Harness) -> None:
    seen: list[str] = []
    registry.handler("dsync.*")(lambda e: seen.append(e.data["id"]))
    yard.deliver(envelope("event_1", 1, "user_1"))
    yard.deliver(envelope("event_1", 1, "user_2"))
    yard.run()
    assert seen == ["user_1"]


def test_a_changed_order_by_does_not_run_a_handled_event_again(redis_url: str) -> None:
    seen: list[str] = []

    def record(event: Event) -> None:
        seen.append(event.id)

    # Given an event handled by a handler ordered by resource
    first = Registry()
    first.register(record, ["dsync.*"], name="crm.sync", order_by="resource")
    with Harness(first, redis_url=redis_url) as yard:
        yard.deliver(envelope("event_1", 1, "user_1", organization_id="org_1"))
        yard.run()
    # When a deploy orders the same handler by organization and the sender redelivers the event
    second = Registry()
    second.register(record, ["dsync.*"], name="crm.sync", order_by="organization")
    with Harness(second, redis_url=redis_url) as yard:
        yard.deliver(envelope("event_1", 1, "user_1", organization_id="org_1"))
        yard.run()
        # Then the handler does not see it again, but does see new events under its new key
        yard.deliver(envelope("event_2", 2, "user_1", organization_id="org_1"))
        yard.run()
    assert seen == ["event_1", "event_2"]


def test_a_crash_between_arrival_and_queueing_is_repaired_by_the_next_ingest(
    registry: Registry, yard: Harness, redis_client: redis.Redis
) -> None:
    seen: list[str] = []
    registry.handler("dsync.*")(lambda e: seen.append(e.id))
    yard.deliver(envelope("event_1", 1))
    # Given an ingester whose second round trip (queueing) fails after the arrival was recorded
    real_queue = yard.store.pairs._queue

    def lost(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailable("redis: lost between the two round trips")

    yard.store.pairs._queue = lost  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable):
        yard.ingester.ingest_once()
    yard.store.pairs._queue = real_queue  # type: ignore[method-assign]
    # Then the message is still in the inbox, is now a "duplicate" of itself, and still reaches the handler once
    assert redis_client.llen("{hy:inbox}:q") == 1
    yard.run()
    assert seen == ["event_1"]
