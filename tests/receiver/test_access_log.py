"""Tests for receiver/access_log.py: one safe structured line per webhook request, none for probes."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import orjson
import pytest

from receiver import create_app
from shared.logging import configure_logging
from shared.settings import Settings
from tests.conftest import TEST_SECRET
from tests.receiver.conftest import event_body, serving, signed_headers

URL = "/webhooks/workos"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    yield stream
    configure_logging("info", "json")


def _access_lines(stream: io.StringIO) -> list[dict[str, object]]:
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [line for line in lines if line.get("logger_name") == "hookyard.receiver.access"]


async def test_one_line_per_webhook_request_with_its_fields(settings: Settings, log_stream: io.StringIO) -> None:
    # Given an app built after logging is configured, and deliveries of several outcomes
    body = event_body("event_01LOGGED", "dsync.user.created", secret_note="do-not-log-this-body")
    headers = signed_headers(body)
    async with serving(create_app(settings)) as client:
        assert (await client.post(URL, content=body, headers=headers)).status_code == 200
        assert (await client.post(URL, content=body + b" ", headers=headers)).status_code == 401
        assert (await client.post("/webhooks/nope", content=body, headers=headers)).status_code == 404
        # Probes and scrapes are not access-logged
        await client.get("/healthz")
        await client.get("/readyz")
        await client.get("/metrics")

    accepted, rejected, unknown = _access_lines(log_stream)

    assert accepted["event"] == "request"
    assert accepted["level"] == "info"
    assert accepted["source"] == "workos"
    assert accepted["outcome"] == "accepted"
    assert accepted["status"] == 200
    assert accepted["event_id"] == "event_01LOGGED"
    assert accepted["event_type"] == "dsync.user.created"
    assert accepted["body_bytes"] == len(body)
    assert isinstance(accepted["duration_ms"], float)
    assert rejected["outcome"] == "invalid_signature"
    assert rejected["status"] == 401
    assert rejected["reason"] == "mismatch"
    assert "event_id" not in rejected  # never parsed: the body was not trusted
    assert unknown["source"] == "unknown"
    assert unknown["outcome"] == "unknown_source"

    # And nothing secret or sent by the client beyond the event identity reaches our log (httpx, the test
    # client, logs its own request lines into the same stream)
    output = "\n".join(line for line in log_stream.getvalue().splitlines() if '"logger_name":"httpx"' not in line)
    signature_hex = headers["WorkOS-Signature"].rsplit("v1=", 1)[1]
    assert TEST_SECRET not in output
    assert signature_hex not in output
    assert "do-not-log-this-body" not in output
    assert "nope" not in output


async def test_the_access_line_is_not_written_below_info(settings: Settings) -> None:
    stream = io.StringIO()
    configure_logging("warning", "json", stream=stream)
    try:
        async with serving(create_app(settings)) as client:
            body = event_body()
            response = await client.post(URL, content=body, headers=signed_headers(body))
    finally:
        configure_logging("info", "json")

    assert response.status_code == 200
    assert _access_lines(stream) == []


async def test_a_rejected_delivery_logs_its_status(settings: Settings, log_stream: io.StringIO) -> None:
    async with serving(create_app(settings)) as client:
        response = await client.request("DELETE", URL)
    assert isinstance(response, httpx.Response)

    [line] = _access_lines(log_stream)
    assert line["outcome"] == "method_not_allowed"
    assert line["status"] == 405
    assert line["body_bytes"] == 0
