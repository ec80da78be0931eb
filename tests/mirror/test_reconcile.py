"""The WorkOS mirror fed by both channels: webhooks dropped at random, the rest recovered from the Events API by
reconciliation, ends with the same rows as a run that lost nothing (the harness runs production's ingest and
runner; the workos SDK talks to the local Events API of tests/fixtures/events_api.py)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import orjson
import redis
import sqlalchemy as sa

from processor.mirror.handlers import bind
from processor.reconcile.events_api import EventsApi
from processor.reconcile.query import EventsQuery
from processor.reconcile.reconciler import Reconciler
from processor.reconcile.state import ReconcileState
from processor.testing import Harness
from tests.fixtures.events_api import EventsApiServer
from tests.mirror.events import T0, reset, snapshot
from tests.mirror.scenarios import ALL_EVENTS
from tests.mirror.test_processor import MIRROR

START_MS = int((T0 - timedelta(hours=1)).timestamp() * 1000)


def run_mirror(
    engine: sa.Engine, redis_url: str, webhooks: list[dict[str, Any]], api: EventsApiServer | None
) -> dict[str, list[dict[str, Any]]]:
    """Deliver `webhooks` (each twice when listed twice), reconcile from `api` if given, run everything, and
    return every row of the mirror."""
    with Harness(MIRROR, redis_url=redis_url) as yard:
        for body in webhooks:
            yard.deliver(orjson.dumps(body))
        if api is not None:
            events_api = EventsApi(api.api_key, api.url)
            try:
                reconciler = Reconciler(events_api, yard.client, source="workos", clock_ms=yard.clock)
                types = tuple(sorted({str(e["event"]) for e in ALL_EVENTS}))
                reconciler.run(EventsQuery(types, None, START_MS, None), None)
            finally:
                events_api.close()
        yard.run()
        assert yard.dead_letters() == []
    return snapshot(engine)


def test_dropped_webhooks_and_reconcile_build_the_mirror_a_lossless_run_builds(
    engine: sa.Engine, mirror_url: str, redis_url: str, redis_client: redis.Redis
) -> None:
    bind(mirror_url)
    # Given the mirror built from every webhook, none lost
    lossless = run_mirror(engine, redis_url, ALL_EVENTS, None)
    assert any(lossless.values())

    # When the same events reach a fresh mirror with a third of the webhooks dropped at random and a tenth
    # delivered twice, and a reconciliation pass lists them all from the Events API
    reset(engine)
    redis_client.flushall()
    rng = random.Random(21)
    kept = [body for body in ALL_EVENTS if rng.random() >= 1 / 3]
    delivered = [copy for body in kept for copy in ([body, body] if rng.random() < 0.1 else [body])]
    with EventsApiServer() as api:
        # (A sequence may repeat another's event: the API lists each id once.)
        listed = {str(body["id"]): {**body, "object": "event"} for body in ALL_EVENTS}
        api.add(*listed.values())
        recovered = run_mirror(engine, redis_url, delivered, api)

    # Then the mirror has exactly the rows of the lossless run
    assert recovered == lossless
    # and the dropped ones were counted as missed by webhooks
    dropped = {str(body["id"]) for body in ALL_EVENTS} - {str(body["id"]) for body in kept}
    assert dropped
    assert ReconcileState(redis_client).tally().missed == {"workos": len(dropped)}
