"""End to end, both channels: signed webhooks through the real receiver process, some lost and some doubled, and
the worker processes' reconcile loop reading a local WorkOS Events API with the workos SDK. Every handler sees
each event once, in order."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import httpx
import pytest
import redis

from processor.reconcile.state import ReconcileState
from shared import keys
from shared.signature import sign
from tests.conftest import TEST_SECRET
from tests.fixtures.events_api import EventsApiServer, api_event, webhook_body
from tests.fixtures.ledger_handlers import LEDGER
from tests.fixtures.live_stack import live_stack
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def events_api() -> Iterator[EventsApiServer]:
    with EventsApiServer() as server:
        yield server


@pytest.fixture
def stack(redis_url: str, events_api: EventsApiServer) -> Iterator[str]:
    """Receiver and two worker processes reconciling every second; yields the webhook URL."""
    with live_stack(
        redis_url,
        TEST_SECRET,
        WORKOS_API_KEY=events_api.api_key,
        WORKOS_BASE_URL=events_api.url,
        HOOKYARD_RECONCILE_INTERVAL="1s",
        HOOKYARD_RECONCILE_SETTLE="1s",
        # The reconciler must find a lost event before later ones of its user run: settle + interval + a fetch.
        HOOKYARD_REORDER_WINDOW="6s",
        HOOKYARD_WORKERS="2",
        TEST_HANDLER_SECONDS="0",
    ) as url:
        yield url


def test_lost_and_doubled_webhooks_with_reconcile_reach_every_handler_once_in_order(
    stack: str, events_api: EventsApiServer, redis_client: redis.Redis
) -> None:
    # Given 48 events of 6 users, each listed by the Events API as it happens; a quarter of their webhooks are
    # lost, a sixth are delivered twice
    rng = random.Random(7)
    events = []
    lost: set[str] = set()
    with httpx.Client(timeout=10) as http:
        for n in range(48):
            user = f"directory_user_{n % 6}"
            event = api_event(f"event_{n:04d}", "dsync.user.updated", user, int(time.time() * 1000))
            events_api.add(event)
            events.append(event)
            if rng.random() < 0.25:
                lost.add(str(event["id"]))
                continue
            body = webhook_body(event)
            for _ in range(2 if rng.random() < 1 / 6 else 1):
                header = sign(body, TEST_SECRET.encode(), int(time.time() * 1000))
                response = http.post(stack, content=body, headers={"WorkOS-Signature": header})
                assert response.status_code == 200, response.text

    # When the workers have handled everything and the reconcile cursor passed the last event
    def lines() -> list[list[str]]:
        return [line.decode().split("|") for line in redis_client.lrange(LEDGER, 0, -1)]

    def done() -> bool:
        handled = {(line[0], line[1]) for line in lines()}
        cursor = ReconcileState(redis_client).cursor()
        due = sum(redis_client.zcard(keys.due_key(shard)) for shard in range(keys.SHARDS))
        return len(handled) == 2 * len(events) and cursor.after == events[-1]["id"] and due == 0

    wait_for(done, 60, "every event to be handled by both handlers")

    # Then each handler saw each event once; the ordered one in created order per user, none late
    for handler in ("ledger.ordered", "ledger.unordered"):
        seen = [line for line in lines() if line[0] == handler]
        assert sorted(line[1] for line in seen) == sorted(str(e["id"]) for e in events), handler
    ordered = [line for line in lines() if line[0] == "ledger.ordered"]
    for user in {line[5] for line in ordered}:
        ids = [line[1] for line in ordered if line[5] == user]
        assert ids == sorted(ids), user
    assert all(line[3] == "0" for line in ordered)
    # and every lost webhook's event was counted as missed by webhooks (a webhook slower than the reconciler
    # may be counted too)
    assert lost
    assert ReconcileState(redis_client).tally().missed.get("workos", 0) >= len(lost)
