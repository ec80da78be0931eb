"""`hookyard reconcile` against a local WorkOS Events API, and what `hookyard stats` then says about missed
deliveries."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import orjson
import pytest
import structlog

from processor.cli import main
from processor.reconcile.state import ReconcileState
from processor.testing import Harness
from shared import keys
from shared.wire import EVENTS_API, decode_message
from tests.fixtures.events_api import EventsApiServer, api_event, webhook_body

DAY_MS = 86_400_000


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # `reconcile` configures logging for the process, onto a stderr that pytest closes after the test.
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def api(yard: Harness, monkeypatch: pytest.MonkeyPatch) -> Iterator[EventsApiServer]:
    with EventsApiServer() as server:
        monkeypatch.setenv("WORKOS_API_KEY", server.api_key)
        monkeypatch.setenv("WORKOS_BASE_URL", server.url)
        yield server


@pytest.fixture
def two_days_ago(api: EventsApiServer, yard: Harness) -> list[dict[str, object]]:
    """Five events created two days ago; the webhooks of the first two arrived."""
    base = int(time.time() * 1000) - 2 * DAY_MS
    events = [api_event(f"event_{n:03d}", "dsync.user.created", f"user_{n}", base + n * 1000) for n in range(5)]
    api.add(*events)
    for event in events[:2]:
        yard.deliver(webhook_body(event))
    yard.step()
    return events


def test_since_queues_what_the_webhooks_missed_and_stats_counts_it(
    two_days_ago: list[dict[str, object]], yard: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    # When a pass over the last three days runs
    assert main(["reconcile", "--since", "3d", "--json"]) == 0

    # Then the three events no webhook brought are queued as API copies
    document = orjson.loads(capsys.readouterr().out)
    assert (document["fetched"], document["new"], document["seen"], document["pages"]) == (5, 3, 2, 1)
    queued = [decode_message(m) for m in yard.client.lrange(keys.INBOX, 0, -1)]
    assert [(q.event_id, q.channel) for q in queued] == [(f"event_00{n}", EVENTS_API) for n in (2, 3, 4)]

    # When the workers ingest them, Then stats shows them as missed by webhooks
    yard.run()
    assert main(["stats", "--json"]) == 0
    missed = orjson.loads(capsys.readouterr().out)["missed_by_webhook"]
    assert missed["events"] == {"workos": 3}
    assert missed["recent"][0].startswith("workos:event_00")
    assert main(["stats"]) == 0
    assert "missed by webhooks (first arrived through the Events API): 3 workos" in capsys.readouterr().out


def test_a_rate_limited_pass_retries_after_the_wait_asked(
    two_days_ago: list[dict[str, object]], api: EventsApiServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the API rate limits the first request
    api.fail_next(429, retry_after="1")

    # When a pass runs, Then it waits, tries again and completes
    assert main(["reconcile", "--since", "3d"]) == 0
    out = capsys.readouterr().out
    assert "rate limited (429); trying again in 1 s" in out
    assert "5 events from the Events API in 1 page: 3 new (queued for the workers), 2 already arrived" in out
    assert len(api.requests) == 2


def test_without_since_it_goes_on_from_the_workers_cursor(
    two_days_ago: list[dict[str, object]],
    api: EventsApiServer,
    yard: Harness,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given no cursor yet, and a first start three days back
    monkeypatch.setenv("HOOKYARD_RECONCILE_SINCE", "3d")

    # When two passes run
    assert main(["reconcile", "--json"]) == 0
    first = orjson.loads(capsys.readouterr().out)
    assert main(["reconcile", "--json"]) == 0
    second = orjson.loads(capsys.readouterr().out)

    # Then the first read everything and left the cursor at the last event; the second went on after it
    assert (first["fetched"], first["after"]) == (5, "event_004")
    assert ReconcileState(yard.client).cursor().after == "event_004"
    assert second["fetched"] == 0
    assert api.requests[-1]["after"] == "event_004"


def test_without_an_api_key_it_says_which_setting(
    yard: Harness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("WORKOS_API_KEY", raising=False)

    assert main(["reconcile", "--since", "1d"]) == 2

    assert "WORKOS_API_KEY: not set" in capsys.readouterr().err
