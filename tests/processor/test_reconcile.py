"""Reconciliation from the Events API: production's ingest and runner (the harness) on the session's Redis, the
real workos SDK talking to a local Events API (tests/fixtures/events_api.py)."""

from __future__ import annotations

import random
from collections.abc import Iterator

import pytest
import redis
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from processor import Event, Registry
from processor.ingest import Ingester
from processor.metrics import WorkerMetrics
from processor.reconcile.collector import ReconcileCollector
from processor.reconcile.events_api import EventsApi
from processor.reconcile.loop import ReconcileLoop
from processor.reconcile.query import EventsQuery, api_time
from processor.reconcile.reconciler import Reconciler
from processor.reconcile.state import ReconcileState
from processor.testing import Harness
from shared import keys
from shared.settings import ReconcileSettings, Secret
from shared.wire import EVENTS_API, decode_message
from tests.fixtures.events_api import EventsApiServer, api_event, webhook_body

TYPES = ("dsync.user.created", "dsync.user.updated")
START_MS = 1_767_225_600_000  # the harness clock's start (2026-01-01)


@pytest.fixture
def api() -> Iterator[EventsApiServer]:
    with EventsApiServer() as server:
        yield server


@pytest.fixture
def ledger(registry: Registry) -> list[tuple[str, str, bool]]:
    """(user id, event id, late) per call of an ordered handler."""
    seen: list[tuple[str, str, bool]] = []

    def record(event: Event) -> None:
        seen.append((str(event.data["id"]), event.id, event.late))

    registry.register(record, ("dsync.user.*",), name="test.ledger")
    return seen


def history(users: int, per_user: int, base_ms: int = START_MS) -> list[dict[str, object]]:
    """Events of `users` users, `per_user` each, one second apart, interleaved across users."""
    events = []
    for n in range(users * per_user):
        user = f"directory_user_{n % users:02d}"
        kind = "dsync.user.created" if n < users else "dsync.user.updated"
        events.append(api_event(f"event_{n:05d}", kind, user, base_ms + n * 1000))
    return events


@pytest.fixture
def events_api(api: EventsApiServer) -> Iterator[EventsApi]:
    client = EventsApi(api.api_key, api.url)
    yield client
    client.close()


@pytest.fixture
def reconciler(events_api: EventsApi, yard: Harness) -> Reconciler:
    return Reconciler(events_api, yard.client, source="workos", clock_ms=yard.clock)


def in_order_once(ledger: list[tuple[str, str, bool]], events: list[dict[str, object]]) -> None:
    by_user: dict[str, list[str]] = {}
    for event in events:
        by_user.setdefault(str(event["data"]["id"]), []).append(str(event["id"]))  # type: ignore[index]
    got: dict[str, list[str]] = {}
    for user, event_id, late in ledger:
        got.setdefault(user, []).append(event_id)
        assert not late, event_id
    assert got == by_user


def test_dropped_webhooks_and_reconcile_reach_the_handler_once_in_order(
    api: EventsApiServer,
    yard: Harness,
    reconciler: Reconciler,
    ledger: list[tuple[str, str, bool]],
    redis_client: redis.Redis,
) -> None:
    # Given 240 events of 12 users in the Events API (three pages), whose webhooks were dropped at random (a
    # third), and some delivered twice
    events = history(users=12, per_user=20)
    api.add(*events)
    rng = random.Random(13)
    dropped = {str(e["id"]) for e in events if rng.random() < 1 / 3}
    for event in events:
        if event["id"] not in dropped:
            yard.deliver(webhook_body(event))
            if rng.random() < 0.1:
                yard.deliver(webhook_body(event))

    # When a reconciliation pass runs before the held events are run
    result = reconciler.run(EventsQuery(TYPES, None, START_MS - 1000, None), None)
    with capture_logs() as logged:
        yard.run()

    # Then every event reached the handler once, in order per user, none late
    in_order_once(ledger, events)
    # and the API copies of delivered webhooks (other bytes, same event) were duplicates, not body conflicts
    assert not [entry for entry in logged if entry["event"] == "ingest.body_conflict"]
    assert (result.fetched, result.pages, result.caught_up) == (240, 3, True)
    # and the pass queued only the dropped ones (the others' webhooks had arrived)
    assert result.new + result.seen == 240
    # ... and ingest counted exactly the dropped ones as missed by webhooks, with no body conflict logged
    assert ReconcileState(redis_client).tally().missed == {"workos": len(dropped)}


def test_an_api_copy_and_its_webhook_in_either_order_run_once(
    api: EventsApiServer,
    yard: Harness,
    reconciler: Reconciler,
    ledger: list[tuple[str, str, bool]],
    redis_client: redis.Redis,
) -> None:
    # Given two events, each arriving on both channels: one webhook first, the other API copy first
    first, second = history(users=1, per_user=2)
    api.add(first, second)
    yard.deliver(webhook_body(first))
    yard.step()  # the webhook of `first` is admitted: the API copy will be known

    # When the API copies are fed, then `second`'s webhook arrives after its API copy
    result = reconciler.run(EventsQuery(TYPES, None, START_MS - 1000, None), None)
    queued = [decode_message(m) for m in redis_client.lrange(keys.INBOX, 0, -1)]
    yard.deliver(webhook_body(second))
    yard.run()

    # Then only `second`'s API copy was queued (marked as such), each event ran once, and the late webhook counts
    assert [(q.event_id, q.channel) for q in queued] == [(second["id"], EVENTS_API)]
    assert (result.new, result.seen) == (1, 1)
    assert [event_id for _, event_id, _ in ledger] == [first["id"], second["id"]]
    tally = ReconcileState(redis_client).tally()
    assert (tally.missed, tally.late_webhooks, tally.recent) == (
        {"workos": 1},
        {"workos": 1},
        [f"workos:{second['id']}"],
    )


def test_an_api_copy_of_an_old_event_is_delivered_at_its_created_time(
    api: EventsApiServer, yard: Harness, reconciler: Reconciler, ledger: list[tuple[str, str, bool]]
) -> None:
    # Given an event created 20 days before now, far outside any signature tolerance
    yard.clock.advance(20 * 86400)
    old = history(users=1, per_user=1)[0]
    api.add(old)
    times: list[int] = []
    yard.registry.register(lambda e: times.append(int(e.issued_at.timestamp() * 1000)), ("dsync.*",), name="t.at")

    # When it is reconciled
    reconciler.run(EventsQuery(TYPES, None, START_MS - 1000, None), None)
    yard.run()

    # Then it is delivered, ordered by its created_at (not refused, not moved to its fetch time)
    assert [event_id for _, event_id, _ in ledger] == [old["id"]]
    assert times == [START_MS]


def test_an_event_reconciled_after_later_ones_ran_is_delivered_late(
    api: EventsApiServer, yard: Harness, reconciler: Reconciler, ledger: list[tuple[str, str, bool]]
) -> None:
    # Given a user's first webhook lost, and its second handled (the hold-back window passed)
    first, second = history(users=1, per_user=2)
    api.add(first, second)
    yard.deliver(webhook_body(second))
    yard.run()

    # When reconciliation finds the first one only afterwards
    reconciler.run(EventsQuery(TYPES, None, START_MS - 1000, None), None)
    yard.run()

    # Then it still reaches the handler once, flagged late: order cannot be restored after the fact
    assert ledger == [(second["data"]["id"], second["id"], False), (first["data"]["id"], first["id"], True)]  # type: ignore[index]


def test_filters_reach_the_api_as_workos_documents_them(
    api: EventsApiServer, yard: Harness, reconciler: Reconciler
) -> None:
    # Given events of two organizations and of a type no one asked for
    mine = [
        api_event(f"event_a{n}", "dsync.user.created", f"u{n}", START_MS + n, organization_id="org_A") for n in range(3)
    ]
    theirs = [
        api_event(f"event_b{n}", "dsync.user.created", f"v{n}", START_MS + n, organization_id="org_B") for n in range(3)
    ]
    other = api_event("event_c0", "dsync.user.deleted", "u0", START_MS + 5, organization_id="org_A")
    api.add(*mine, *theirs, other)

    # When one organization's user creations of a time range are reconciled
    result = reconciler.run(EventsQuery(("dsync.user.created",), "org_A", START_MS + 1, START_MS + 10_000), None)

    # Then only those are fetched, and the SDK sent WorkOS's parameters
    queued = [decode_message(m).event_id for m in yard.client.lrange(keys.INBOX, 0, -1)]
    assert queued == ["event_a1", "event_a2"]
    assert result.fetched == 2
    sent = api.requests[0]
    assert sent["events"] == "dsync.user.created"
    assert sent["organization_id"] == "org_A"
    assert sent["range_start"].endswith("Z") and sent["range_end"].endswith("Z")
    assert sent["limit"] == "100"


def loop_for(
    server: EventsApiServer, yard: Harness, metrics: WorkerMetrics | None = None, **options: object
) -> ReconcileLoop:
    options = {"settle_s": 0.0, **options}
    config = ReconcileSettings(
        api_key=Secret(server.api_key.encode()), base_url=server.url, interval_s=5.0,
        types=TYPES, **options,  # type: ignore[arg-type]
    )  # fmt: skip
    return ReconcileLoop(config, yard.registry, yard.client, clock_ms=yard.clock, metrics=metrics)


def test_one_leader_at_a_time_and_the_cursor_carries_over(api: EventsApiServer, yard: Harness) -> None:
    # Given two workers' loops and 150 events (two pages)
    api.add(*history(users=3, per_user=50))
    yard.clock.advance(600)
    leader, standby = loop_for(api, yard), loop_for(api, yard)

    # When both step
    assert leader.step() == 5.0  # caught up: next round after the interval
    assert standby.step() == 5.0  # not the leader: nothing fetched
    # Then only the leader asked the API (two pages), and the cursor is stored
    assert len(api.requests) == 2
    cursor = ReconcileState(yard.client).cursor()
    assert cursor.after == "event_00149"
    assert cursor.position_ms == yard.clock()

    # When new events come and the leader stops, the standby takes over from the stored cursor
    api.add(api_event("event_00150", "dsync.user.updated", "directory_user_00", START_MS + 200_000))
    leader.close()
    assert standby.step() == 5.0
    # (a caught-up cursor is read again from its last event's time: nothing it had read is queued twice)
    assert "after" not in api.requests[-1]
    assert api.requests[-1]["range_start"] == api_time(START_MS + 149_000)
    assert yard.client.llen(keys.INBOX) == 151
    assert decode_message(yard.client.lrange(keys.INBOX, -1, -1)[0]).event_id == "event_00150"
    standby.close()


def test_429_and_outages_back_off_honouring_retry_after(api: EventsApiServer, yard: Harness) -> None:
    # Given a leader whose first request is rate limited with Retry-After: 7, then a 503, then served
    api.add(*history(users=1, per_user=3))
    yard.clock.advance(600)
    loop = loop_for(api, yard)
    api.fail_next(429, retry_after="7")
    api.fail_next(503)

    # When it steps, Then it waits what the API asked, then backs off, then catches up
    assert loop.step() == 7.0
    yard.clock.advance(3)
    assert loop.step() == 4.0  # stepped early: it does not ask the API before the wait is over
    assert len(api.requests) == 1
    yard.clock.advance(4)
    assert loop.step() == 2.0  # doubled from the minimum (no Retry-After)
    assert ReconcileState(yard.client).cursor().after is None  # a failed round moves nothing
    yard.clock.advance(2)
    assert loop.step() == 5.0
    assert ReconcileState(yard.client).cursor().after == "event_00002"
    loop.close()

    # Given the API unreachable (connection refused)
    api.stop()
    down = loop_for(api, yard)
    # When it steps, Then it backs off further each round, and the cursor stays
    waits = []
    for _ in range(3):
        waits.append(down.step())
        yard.clock.advance(waits[-1])
    assert waits == [1.0, 2.0, 4.0]
    assert ReconcileState(yard.client).cursor().after == "event_00002"
    down.close()


def test_metrics_count_requests_fetched_events_and_missed_deliveries(api: EventsApiServer, yard: Harness) -> None:
    # Given three events, the first one's webhook delivered and admitted, and the API rate limiting once
    events = history(users=1, per_user=3)
    api.add(*events)
    yard.deliver(webhook_body(events[0]))
    metrics = WorkerMetrics(CollectorRegistry())
    ingester = Ingester(yard.store, yard.registry, clock_ms=yard.clock, metrics=metrics)
    ingester.ingest_once()
    yard.clock.advance(600)
    loop = loop_for(api, yard, metrics)
    api.fail_next(429, retry_after="1")

    # When the loop steps twice (waiting as told) and the API copies are ingested
    yard.clock.advance(loop.step())
    loop.step()
    ingester.ingest_once()
    loop.close()

    # Then requests, fetched events (new vs seen) and missed deliveries are counted
    assert metrics.reconcile_requests.labels("unavailable")._value.get() == 1
    assert metrics.reconcile_requests.labels("ok")._value.get() == 1
    assert metrics.reconciled.labels("new")._value.get() == 2
    assert metrics.reconciled.labels("seen")._value.get() == 1
    assert metrics.missed.labels("workos")._value.get() == 2
    assert metrics.conflicts.labels("workos")._value.get() == 0


def test_an_event_the_sdk_models_do_not_fit_is_still_reconciled(
    api: EventsApiServer, yard: Harness, reconciler: Reconciler, ledger: list[tuple[str, str, bool]]
) -> None:
    # Given a page holding an event whose data lacks a field the SDK's typed model requires (models lag the API)
    odd = api_event("event_odd", "dsync.user.created", "directory_user_odd", START_MS)
    del odd["data"]["email"]  # type: ignore[attr-defined]
    api.add(odd, *history(users=1, per_user=2, base_ms=START_MS + 1000))

    # When it is reconciled
    with capture_logs() as logged:
        result = reconciler.run(EventsQuery(TYPES, None, START_MS - 1000, None), None)
    yard.run()

    # Then the page is read as WorkOS sent it, and every event reaches the handler
    assert (result.fetched, result.new) == (3, 3)
    assert sorted(event_id for _, event_id, _ in ledger) == ["event_00000", "event_00001", "event_odd"]
    assert [entry["event"] for entry in logged if entry["log_level"] == "warning"] == ["reconcile.sdk_model_mismatch"]


def test_the_cursor_lag_is_a_gauge_read_from_redis(api: EventsApiServer, yard: Harness) -> None:
    # Given no round yet, Then there is no lag to report
    collector = ReconcileCollector(yard.client, yard.clock)
    assert list(collector.collect()) == []

    # When a leader catches up (settle 0) and ten minutes pass
    api.add(*history(users=1, per_user=2))
    loop = loop_for(api, yard)
    loop.step()
    loop.close()
    yard.clock.advance(600)

    # Then the gauge says how far behind now the cursor is
    [family] = collector.collect()
    assert family.name == "hookyard_reconcile_cursor_lag_seconds"
    assert [sample.value for sample in family.samples] == [600.0]
