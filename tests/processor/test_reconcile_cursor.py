"""The reconcile loop's cursor and backoff against the real workos SDK and the local Events API: a cursor whose
event the API dropped, an event WorkOS lists late behind the cursor, a backoff that outlives its leader, and
`Retry-After` as an HTTP-date."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

import processor.reconcile.loop as loop_module
from processor.ingest import Ingester
from processor.metrics import WorkerMetrics
from processor.reconcile.events_api import retry_after_seconds
from processor.reconcile.query import EventsQuery
from processor.reconcile.reconciler import Reconciler
from processor.reconcile.state import ReconcileState
from processor.testing import Harness
from shared import keys
from shared.errors import EventsApiUnavailable
from shared.wire import decode_message
from tests.fixtures.events_api import EventsApiServer, api_event, webhook_body
from tests.processor.test_reconcile import START_MS, TYPES, api, events_api, history, loop_for, reconciler

__all__ = ["api", "events_api", "reconciler"]  # fixtures shared with test_reconcile.py

DAY_S = 86_400


def inbox_ids(yard: Harness) -> list[str]:
    return [decode_message(m).event_id for m in yard.client.lrange(keys.INBOX, 0, -1)]


def test_a_quiet_source_reads_on_after_its_cursor_event_left_the_api(api: EventsApiServer, yard: Harness) -> None:
    # Given one event read by a caught-up loop
    api.add(api_event("event_00000", "dsync.user.created", "directory_user_00", START_MS))
    yard.clock.advance(600)
    loop = loop_for(api, yard)
    assert loop.step() == 5.0
    # When 31 days pass without events, so the API no longer has the cursor's event, and then one comes
    api.events.clear()
    api.add(api_event("event_00001", "dsync.user.updated", "directory_user_00", START_MS + 31 * DAY_S * 1000))
    yard.clock.advance(31 * DAY_S + 600)
    with capture_logs() as logged:
        waits = [loop.step() for _ in range(2)]
    loop.close()

    # Then the loop reads it at once, from the cursor's time rather than after the vanished event
    assert waits == [5.0, 5.0]
    assert inbox_ids(yard) == ["event_00000", "event_00001"]
    assert not [e for e in logged if e["event"] == "reconcile.api_refused"]


def test_a_refused_after_cursor_restarts_from_its_time_once(
    api: EventsApiServer, yard: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a backlog of 150 events read one page per round, the first round done (cursor after event_00099)
    monkeypatch.setattr(loop_module, "PAGES_PER_ROUND", 1)
    api.add(*history(users=1, per_user=150))
    yard.clock.advance(600)
    loop = loop_for(api, yard)
    assert loop.step() == 0.0
    assert ReconcileState(yard.client).cursor().after == "event_00099"
    # When the API drops the events up to the cursor's (422: it no longer knows `after`)
    del api.events[:100]
    with capture_logs() as logged:
        waits = [loop.step() for _ in range(3)]
    loop.close()

    # Then the loop logs it once, goes on at once from the cursor's time, and reads the rest, each event once
    assert waits == [0.0, 5.0, 5.0]
    assert [e["event"] for e in logged if e["log_level"] in ("warning", "error")] == ["reconcile.cursor_refused"]
    assert inbox_ids(yard) == [f"event_{n:05d}" for n in range(150)]
    assert "after" not in api.requests[-1]


def test_a_backlog_cursor_older_than_25_days_is_not_sent_as_after(
    api: EventsApiServer, yard: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a backlog read one page per round, the first round done
    monkeypatch.setattr(loop_module, "PAGES_PER_ROUND", 1)
    api.add(*history(users=1, per_user=150))
    yard.clock.advance(600)
    loop = loop_for(api, yard)
    assert loop.step() == 0.0
    # When the next round comes 26 days later
    yard.clock.advance(26 * DAY_S)
    with capture_logs() as logged:
        loop.step()
    loop.close()

    # Then it reads from the cursor's time, not after its event, and feeds only what it had not read
    assert "after" not in api.requests[-1]
    assert [e["event"] for e in logged if e["event"].startswith("reconcile.cursor")] == ["reconcile.cursor_aged"]
    assert inbox_ids(yard) == [f"event_{n:05d}" for n in range(150)]


def test_an_event_listed_late_behind_the_cursor_is_read_once(api: EventsApiServer, yard: Harness) -> None:
    # Given a settle time of 60 s, three events created just before the first round's end (now - 60 s), the first
    # one's webhook delivered and admitted
    yard.clock.advance(600)
    base = yard.clock() - 70_000
    events = [api_event(f"event_0000{n}", "dsync.user.updated", "directory_user_00", base + n * 1000) for n in range(3)]
    api.add(*events)
    yard.deliver(webhook_body(events[0]))
    metrics = WorkerMetrics(CollectorRegistry())
    Ingester(yard.store, yard.registry, clock_ms=yard.clock, metrics=metrics).ingest_once()
    loop = loop_for(api, yard, metrics, settle_s=60.0)
    loop.step()
    assert ReconcileState(yard.client).cursor().after == "event_00002"

    # When WorkOS lists an event created before the cursor's event only now, and a newer one comes
    api.add(api_event("event_00001b", "dsync.user.updated", "directory_user_00", base + 1500))
    api.add(api_event("event_00003", "dsync.user.updated", "directory_user_00", base + 300_000))
    yard.clock.advance(600)
    loop.step()
    loop.step()
    loop.close()

    # Then the late event is read, and no event is queued twice or counted twice
    assert inbox_ids(yard) == ["event_00001", "event_00002", "event_00001b", "event_00003"]  # 00000: admitted
    assert metrics.reconciled.labels("new")._value.get() == 4
    assert metrics.reconciled.labels("seen")._value.get() == 1


def test_a_backoff_holds_every_worker_across_a_leader_handover(
    api: EventsApiServer, yard: Harness, reconciler: Reconciler
) -> None:
    # Given two workers' loops, the leader told by a 429 to wait 120 s
    api.add(*history(users=1, per_user=3))
    yard.clock.advance(600)
    first, second = loop_for(api, yard), loop_for(api, yard)
    api.fail_next(429, retry_after="120")
    assert first.step() == 120.0
    # When the leader goes away (its lease gone) 30 s later and the other worker takes over
    yard.clock.advance(30)
    first.close()
    held = second.step()

    # Then the new leader waits out the rest without a request, and so does a one-off pass (the CLI's)
    assert held == 90.0
    with pytest.raises(EventsApiUnavailable) as refused:
        reconciler.run(EventsQuery(TYPES, None, START_MS, None), None)
    assert refused.value.retry_after_s == 90.0
    assert len(api.requests) == 1
    # and once the wait is over it reads
    yard.clock.advance(90)
    assert second.step() == 5.0
    assert inbox_ids(yard) == ["event_00000", "event_00001", "event_00002"]
    second.close()


def test_retry_after_as_an_http_date_on_a_5xx_is_honoured(api: EventsApiServer, yard: Harness) -> None:
    # Given a 503 whose Retry-After is an HTTP-date 120 s ahead
    api.add(*history(users=1, per_user=1))
    yard.clock.advance(600)
    loop = loop_for(api, yard)
    when = datetime.fromtimestamp(time.time() + 120, UTC)
    api.fail_next(503, retry_after=format_datetime(when, usegmt=True))

    # When the loop steps, Then it waits until that date (less the time the request took)
    wait = loop.step()
    loop.close()
    assert 100.0 < wait <= 120.0


def test_retry_after_takes_seconds_or_an_http_date() -> None:
    # Given a fixed now, When each form is parsed, Then both give the seconds to wait; anything else gives none
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:02:00 GMT", now) == 120.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
