"""Delivery semantics on a real Redis, driven deterministically: dedupe, order, late, retries, dead letters."""

from __future__ import annotations

from typing import Any

from processor import Event, Registry, RetryLater
from processor.handlers import Unprocessable
from processor.testing import Harness

T0 = "2026-01-01T00:00:"


def envelope(eid: str, second: int, rid: str = "user_1", etype: str = "dsync.user.updated") -> dict[str, Any]:
    return {"id": eid, "event": etype, "data": {"id": rid}, "created_at": f"{T0}{second:02d}.000Z"}


def test_a_duplicate_delivery_reaches_the_handler_once(registry: Registry, yard: Harness) -> None:
    seen: list[str] = []
    registry.handler("dsync.*")(lambda e: seen.append(e.id))
    # Given the same event delivered three times, once after it was handled
    yard.deliver(envelope("event_1", 1))
    yard.deliver(envelope("event_1", 1))
    yard.run()
    yard.deliver(envelope("event_1", 1))
    yard.run()
    # Then the handler saw it once
    assert seen == ["event_1"]


def test_events_of_one_resource_run_in_issued_order_within_the_window(registry: Registry, yard: Harness) -> None:
    seen: list[tuple[str, bool]] = []
    registry.handler("dsync.*")(lambda e: seen.append((e.id, e.late)))
    # Given events of one user arriving newest first, within the 5 s hold-back window
    yard.deliver(envelope("event_c", 3))
    yard.clock.advance(1)
    yard.deliver(envelope("event_a", 1))
    yard.clock.advance(1)
    yard.deliver(envelope("event_b", 2))
    # When nothing has waited out the window yet, nothing runs
    yard.step()
    assert seen == []
    # Then once it has, they run in issued order, none late
    yard.run()
    assert seen == [("event_a", False), ("event_b", False), ("event_c", False)]


def test_an_event_older_than_one_delivered_is_late(registry: Registry, yard: Harness) -> None:
    seen: list[tuple[str, bool]] = []
    registry.handler("dsync.*")(lambda e: seen.append((e.id, e.late)))
    yard.deliver(envelope("event_new", 5))
    yard.run()
    # Given an older event arriving after a newer one was delivered
    yard.deliver(envelope("event_old", 1))
    yard.run()
    assert seen == [("event_new", False), ("event_old", True)]


def test_late_skip_keeps_the_event_for_replay(registry: Registry, yard: Harness) -> None:
    seen: list[str] = []

    def sync(event: Event) -> None:
        seen.append(event.id)

    registry.handler("dsync.*", late="skip", name="sync")(sync)
    yard.deliver(envelope("event_new", 5))
    yard.run()
    yard.deliver(envelope("event_old", 1))
    yard.run()
    assert seen == ["event_new"]
    [skipped] = yard.skipped()
    assert (skipped["event_id"], skipped["handler"], skipped["error_type"]) == ("event_old", "sync", "LateEvent")
    # A replay is delivered even though it is late
    assert yard.replay("event_old", "sync")
    yard.run()
    assert seen == ["event_new", "event_old"]
    assert yard.skipped() == []


def test_different_resources_do_not_wait_for_each_other(registry: Registry, yard: Harness) -> None:
    seen: list[str] = []
    failing = {"event_a1"}

    def sync(event: Event) -> None:
        if event.id in failing:
            raise RuntimeError("downstream is down")
        seen.append(event.id)

    registry.handler("dsync.*", min_backoff=60, max_backoff=60)(sync)
    # Given user a's first event failing, and a later event of user a and one of user b
    yard.deliver(envelope("event_a1", 1, "user_a"))
    yard.deliver(envelope("event_a2", 2, "user_a"))
    yard.deliver(envelope("event_b1", 3, "user_b"))
    yard.step()  # admitted now: the hold-back window starts
    yard.clock.advance(5)
    yard.step()
    # Then b runs while a is held behind its failing head
    assert seen == ["event_b1"]
    # When the downstream recovers, a's events run in order
    failing.clear()
    yard.run()
    assert seen == ["event_b1", "event_a1", "event_a2"]


def test_a_failing_handler_dead_letters_without_delaying_another(registry: Registry, yard: Harness) -> None:
    calls: dict[str, int] = {}
    good: list[str] = []

    def broken(event: Event) -> None:
        calls[event.id] = event.attempt
        raise ValueError("bad mapping")

    registry.handler("dsync.*", name="broken", max_attempts=3, min_backoff=1, max_backoff=4)(broken)
    registry.handler("dsync.*", name="good")(lambda e: good.append(e.id))
    yard.deliver(envelope("event_1", 1))
    yard.deliver(envelope("event_2", 2))
    yard.step()  # admitted now: the hold-back window starts
    yard.clock.advance(5)
    yard.step()
    # The good handler finished both at once
    assert good == ["event_1", "event_2"]
    yard.run()
    assert calls == {"event_1": 3, "event_2": 3}
    dead = yard.dead_letters()
    assert [(d["event_id"], d["handler"], d["attempts"], d["error_type"]) for d in dead] == [
        ("event_1", "broken", 3, "ValueError"),
        ("event_2", "broken", 3, "ValueError"),
    ]
    assert "bad mapping" in dead[0]["error_message"]
    assert "Traceback" in dead[0]["traceback"]
    assert dead[0]["first_failure_ms"] < dead[0]["last_failure_ms"]
    assert good == ["event_1", "event_2"]


def test_replaying_a_dead_letter_reruns_only_that_handler(registry: Registry, yard: Harness) -> None:
    broken_ok = False
    broken_seen: list[tuple[str, int]] = []
    good: list[str] = []

    def broken(event: Event) -> None:
        if not broken_ok:
            raise ValueError("bug")
        broken_seen.append((event.id, event.attempt))

    registry.handler("dsync.*", name="broken", max_attempts=1)(broken)
    registry.handler("dsync.*", name="good")(lambda e: good.append(e.id))
    yard.deliver(envelope("event_1", 1))
    yard.run()
    assert [d["event_id"] for d in yard.dead_letters()] == ["event_1"]
    # When the handler is fixed and the dead letter replayed
    broken_ok = True
    assert yard.replay("event_1", "broken")
    assert not yard.replay("event_1", "broken")  # already back in the queue
    yard.run()
    assert broken_seen == [("event_1", 2)]  # the replay's call goes on counting: attempt 1 failed before
    assert good == ["event_1"]
    assert yard.dead_letters() == []


def test_retry_later_waits_the_asked_time(registry: Registry, yard: Harness) -> None:
    attempts: list[tuple[int, int]] = []

    def rate_limited(event: Event) -> None:
        attempts.append((event.attempt, yard.clock()))
        if event.attempt == 1:
            raise RetryLater(30)

    registry.handler("dsync.*")(rate_limited)
    yard.deliver(envelope("event_1", 1))
    yard.run()
    assert [a for a, _ in attempts] == [1, 2]
    assert attempts[1][1] - attempts[0][1] == 30_000


def test_an_unprocessable_event_is_a_dead_letter_without_retries(registry: Registry, yard: Harness) -> None:
    attempts: list[int] = []

    def strict(event: Event) -> None:
        attempts.append(event.attempt)
        raise Unprocessable("no directory_id")

    # Given a handler allowed 8 attempts that finds the event malformed
    registry.handler("dsync.*", name="strict", max_attempts=8)(strict)
    yard.deliver(envelope("event_1", 1))
    yard.run()
    # Then it was called once, and the event is its dead letter with the reason
    assert attempts == [1]
    [letter] = yard.dead_letters()
    assert (letter["error_type"], letter["error_message"]) == ("Unprocessable", "no directory_id")
    assert letter["attempts"] == 1


def test_unordered_handler_needs_no_window(registry: Registry, yard: Harness) -> None:
    seen: list[str] = []
    registry.handler("*", order_by="none")(lambda e: seen.append(e.id))
    yard.deliver(envelope("event_2", 2))
    yard.deliver(envelope("event_1", 1))
    yard.step()  # no clock movement at all
    assert sorted(seen) == ["event_1", "event_2"]


def test_async_handlers_are_awaited(registry: Registry, yard: Harness) -> None:
    seen: list[str] = []

    async def sync(event: Event) -> None:
        seen.append(event.id)

    registry.handler("dsync.*")(sync)
    yard.deliver(envelope("event_1", 1))
    yard.run()
    assert seen == ["event_1"]


def test_event_fields(registry: Registry, yard: Harness) -> None:
    seen: list[Event] = []
    registry.handler("dsync.*")(seen.append)
    body = (
        b'{"id": "event_9", "event": "dsync.user.created", "data": {"id": "u"}, "created_at": "2025-05-01 10:00:00.5"}'
    )
    yard.deliver(body, source="workos")
    yard.run()
    [event] = seen
    assert (event.id, event.type, event.source, event.raw, event.attempt, event.late) == (
        "event_9", "dsync.user.created", "workos", body, 1, False,
    )  # fmt: skip
    assert event.created_at is not None and event.created_at.isoformat() == "2025-05-01T10:00:00.500000+00:00"
    assert event.issued_at == event.created_at
    assert event.signed_at == event.received_at


def test_the_window_runs_from_admission_after_an_ingest_backlog(registry: Registry, yard: Harness) -> None:
    seen: list[tuple[str, bool]] = []
    registry.handler("dsync.*")(lambda e: seen.append((e.id, e.late)))
    # Given two deliveries received 3 s apart, but ingested only 10 s later (a backlog), in separate batches
    yard.deliver(envelope("event_b", 2))
    yard.clock.advance(3)
    yard.deliver(envelope("event_a", 1))
    yard.clock.advance(10)
    yard.ingester.batch_size = 1
    result = yard.ingester.ingest_once()
    assert result is not None
    yard.wakes.extend(result.wake)
    yard.step()  # event_b is admitted and could run at once if the window counted from receipt
    yard.run()
    # Then the earlier-issued event still overtakes: the window started at admission
    assert seen == [("event_a", False), ("event_b", False)]
