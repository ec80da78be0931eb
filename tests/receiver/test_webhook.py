"""Tests for receiver/webhook.py: every answer of `POST /webhooks/{source}`, against a real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis
from starlette.applications import Starlette

from processor.devtools.embedded_redis import EmbeddedRedis
from receiver import create_app, receiver_state
from receiver.outcome import REQUEST_RECORD, RequestRecord
from receiver.state import ReceiverState
from receiver.webhook import WebhookEndpoint
from shared.keys import INBOX, INBOX_WAKE
from shared.settings import Settings
from tests.conftest import SAMPLES
from tests.receiver.conftest import event_body, inbox_events, now_ms, serving, signed_headers

URL = "/webhooks/workos"

VECTOR_T = 1722443701539
VECTOR_HEADER = f"t={VECTOR_T}, v1=bd54a3768f461461c8439c2f97ab0d646ef3976f84d5d5b132d18f2fa89cdad5"
VECTOR_SECRET = "2sAZJlbjP8Ce3rwkKEv2GfKef"


async def test_signed_event_is_stored_then_answered_200(client: httpx.AsyncClient, redis_client: redis.Redis) -> None:
    # Given a validly signed event
    body = event_body("event_01ACCEPT", "dsync.user.created")
    signed_at = now_ms()

    # When it is delivered
    response = await client.post(URL, content=body, headers=signed_headers(body, at_ms=signed_at))

    # Then the answer says accepted, and the exact bytes are in the inbox with their metadata
    assert response.status_code == 200
    assert response.json() == {"status": "accepted", "id": "event_01ACCEPT"}
    assert response.headers["content-type"] == "application/json"
    [stored] = inbox_events(redis_client)
    assert stored.raw == body
    assert stored.source == "workos"
    assert stored.event_id == "event_01ACCEPT"
    assert stored.event_type == "dsync.user.created"
    assert stored.signed_at_ms == signed_at
    assert abs(stored.received_at_ms - now_ms()) < 60_000
    assert redis_client.lrange(INBOX_WAKE, 0, -1) == [b"1"]


async def test_real_workos_vector_is_accepted_byte_for_byte(
    base_env: dict[str, str], redis_client: redis.Redis
) -> None:
    # Given the recorded WorkOS delivery and a clock set to shortly after it was signed
    body = (SAMPLES / "connection.activated.body").read_bytes()
    settings = Settings.from_env({**base_env, "WORKOS_WEBHOOK_SECRET": VECTOR_SECRET})
    app = create_app(settings, clock_ms=lambda: VECTOR_T + 2_000)

    async with serving(app) as client:
        response = await client.post(URL, content=body, headers={"WorkOS-Signature": VECTOR_HEADER})

    assert response.status_code == 200
    [stored] = inbox_events(redis_client)
    assert stored.raw == body
    assert stored.signed_at_ms == VECTOR_T
    assert stored.received_at_ms == VECTOR_T + 2_000
    assert stored.event_id == response.json()["id"]
    assert stored.event_type == "connection.activated"


async def test_the_wake_list_holds_one_item_however_many_events(
    client: httpx.AsyncClient, redis_client: redis.Redis
) -> None:
    for n in range(3):
        body = event_body(f"event_{n}")
        assert (await client.post(URL, content=body, headers=signed_headers(body))).status_code == 200

    assert redis_client.llen(INBOX) == 3
    assert redis_client.llen(INBOX_WAKE) == 1


async def test_unknown_source_is_404(client: httpx.AsyncClient, redis_client: redis.Redis) -> None:
    body = event_body()
    response = await client.post("/webhooks/stripe", content=body, headers=signed_headers(body))

    assert response.status_code == 404
    assert response.json() == {"error": "unknown_source"}
    assert redis_client.llen(INBOX) == 0


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_methods_are_405_with_allow_post(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, URL)

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json() == {"error": "method_not_allowed"}


async def test_declared_length_over_limit_is_413_without_reading(
    settings: Settings, client: httpx.AsyncClient, redis_client: redis.Redis
) -> None:
    body = event_body(padding="x" * settings.max_body_bytes)

    response = await client.post(URL, content=body, headers=signed_headers(body))

    assert response.status_code == 413
    assert response.json() == {"error": "body_too_large"}
    assert response.headers["connection"] == "close"
    assert redis_client.llen(INBOX) == 0


async def test_declared_length_over_limit_is_refused_before_any_body_is_read(settings: Settings) -> None:
    # Given the endpoint alone, and a receive() that must never be called
    endpoint = WebhookEndpoint(settings.sources, settings.max_body_bytes, ReceiverState(settings))
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body was read")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    declared = str(settings.max_body_bytes + 1).encode()
    scope = _scope(headers=[(b"content-length", declared)])
    await endpoint(scope, receive, send)

    assert sent[0]["status"] == 413


async def test_chunked_body_growing_past_the_limit_is_413_and_not_read_to_the_end(
    settings: Settings, client: httpx.AsyncClient, redis_client: redis.Redis
) -> None:
    # Given a body streamed without Content-Length that would never end
    chunk = b"x" * 65536
    produced = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal produced
        while produced < 100 * settings.max_body_bytes:
            produced += len(chunk)
            yield chunk

    body_headers = signed_headers(b"irrelevant")
    response = await client.post(URL, content=endless(), headers=body_headers)

    # Then the endpoint stops reading as soon as the limit is passed
    assert response.status_code == 413
    assert response.json() == {"error": "body_too_large"}
    assert produced <= settings.max_body_bytes + 2 * len(chunk)
    assert redis_client.llen(INBOX) == 0


async def test_lying_content_length_does_not_let_a_bigger_body_in(settings: Settings) -> None:
    endpoint = WebhookEndpoint(settings.sources, settings.max_body_bytes, ReceiverState(settings))
    sent: list[dict[str, Any]] = []
    chunks = [b"x" * 65536] * (settings.max_body_bytes // 65536 + 2)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": chunks.pop(), "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await endpoint(_scope(headers=[(b"content-length", b"10")]), receive, send)

    assert sent[0]["status"] == 413
    assert chunks  # stopped before the end


async def test_a_body_of_exactly_the_limit_is_read(
    settings: Settings, client: httpx.AsyncClient, redis_client: redis.Redis
) -> None:
    skeleton = event_body(padding="")
    body = event_body(padding="x" * (settings.max_body_bytes - len(skeleton)))
    assert len(body) == settings.max_body_bytes

    response = await client.post(URL, content=body, headers=signed_headers(body))

    assert response.status_code == 200
    assert inbox_events(redis_client)[0].raw == body


async def test_a_multi_chunk_body_is_stored_whole(client: httpx.AsyncClient, redis_client: redis.Redis) -> None:
    body = event_body(padding="y" * 200_000)
    pieces = [body[i : i + 7000] for i in range(0, len(body), 7000)]

    async def stream() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    response = await client.post(URL, content=stream(), headers=signed_headers(body))

    assert response.status_code == 200
    assert inbox_events(redis_client)[0].raw == body


def _signature_case(case: str) -> tuple[dict[str, str], str]:
    # Built when the test runs, not when it is collected: a signature made at collection time goes stale (180 s)
    # in a long suite, turning a "mismatch" case into a "stale" one.
    body = event_body()
    t = now_ms()
    good = signed_headers(body, at_ms=t)["WorkOS-Signature"]
    cases: dict[str, tuple[dict[str, str], str]] = {
        "missing": ({}, "missing_header"),
        "empty": ({"WorkOS-Signature": ""}, "missing_header"),
        "malformed": ({"WorkOS-Signature": "v1=abc"}, "malformed_header"),
        "bad-t": ({"WorkOS-Signature": "t=soon, v1=" + "0" * 64}, "malformed_header"),
        "stale": (signed_headers(body, at_ms=t - 600_000), "stale"),
        "future": (signed_headers(body, at_ms=t + 600_000), "future"),
        "wrong-secret": (signed_headers(body, secret="whsec_someone_else"), "mismatch"),
        "tampered": ({"WorkOS-Signature": good.replace("v1=", "v1=f")[:-1]}, "mismatch"),
    }
    return cases[case]


@pytest.mark.parametrize(
    "case", ["missing", "empty", "malformed", "bad-t", "stale", "future", "wrong-secret", "tampered"]
)
async def test_bad_signature_is_401_with_reason(
    client: httpx.AsyncClient, redis_client: redis.Redis, case: str
) -> None:
    headers, reason = _signature_case(case)
    response = await client.post(URL, content=event_body(), headers=headers)

    assert response.status_code == 401
    assert response.json() == {"error": "invalid_signature", "reason": reason}
    assert redis_client.llen(INBOX) == 0


async def test_body_changed_after_signing_is_401(client: httpx.AsyncClient) -> None:
    body = event_body()
    headers = signed_headers(body)

    response = await client.post(URL, content=body.replace(b"user_01", b"user_02"), headers=headers)

    assert response.status_code == 401
    assert response.json()["reason"] == "mismatch"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        pytest.param(b"not json", "not_json", id="not-json"),
        pytest.param(b"\xff\xfe{}", "not_json", id="not-utf8"),
        pytest.param(b"[1, 2]", "not_object", id="array"),
        pytest.param(b'"event"', "not_object", id="string"),
        pytest.param(b'{"event": "user.created", "data": {}}', "missing_id", id="no-id"),
        pytest.param(b'{"id": 7, "event": "user.created", "data": {}}', "missing_id", id="numeric-id"),
        pytest.param(b'{"id": "event_1", "data": {}}', "missing_event", id="no-event"),
        pytest.param(b'{"id": "event_1", "event": "user.created"}', "bad_data", id="no-data"),
        pytest.param(b'{"id": "event_1", "event": "user.created", "data": []}', "bad_data", id="data-list"),
        pytest.param(b"", "not_json", id="empty"),
    ],
)
async def test_signed_but_invalid_event_is_400_with_reason(
    client: httpx.AsyncClient, redis_client: redis.Redis, body: bytes, reason: str
) -> None:
    response = await client.post(URL, content=body, headers=signed_headers(body))

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_event", "reason": reason}
    assert redis_client.llen(INBOX) == 0


async def test_redis_down_is_503_never_200_and_recovers_without_restart(
    redis_server: EmbeddedRedis, redis_url: str, client: httpx.AsyncClient
) -> None:
    # Given a receiver that has already stored an event
    first = event_body("event_before")
    assert (await client.post(URL, content=first, headers=signed_headers(first))).status_code == 200

    # When Redis goes away
    redis_server.stop()
    body = event_body("event_during")
    response = await client.post(URL, content=body, headers=signed_headers(body))

    # Then the delivery is refused for a retry, not accepted
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {"error": "store_unavailable"}

    # And when Redis is back on the same port, the same app stores again
    redis_server.start()
    response = await client.post(URL, content=body, headers=signed_headers(body))
    assert response.status_code == 200
    check = redis.Redis.from_url(redis_url)
    try:
        assert [e.event_id for e in inbox_events(check)] == ["event_before", "event_during"]
    finally:
        check.close()


async def test_a_request_before_startup_is_503(app: Starlette) -> None:
    # No lifespan has run, so there is no Redis client: the answer must still not be 200 (or 500).
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
        body = event_body()
        response = await client.post(URL, content=body, headers=signed_headers(body))

    assert response.status_code == 503


async def test_200_concurrent_deliveries_are_all_stored_once_in_batches(
    app: Starlette, client: httpx.AsyncClient, redis_client: redis.Redis
) -> None:
    bodies = [event_body(f"event_{n:03d}") for n in range(200)]

    responses = await asyncio.gather(*(client.post(URL, content=body, headers=signed_headers(body)) for body in bodies))

    assert [r.status_code for r in responses] == [200] * 200
    stored = inbox_events(redis_client)
    assert sorted(e.event_id for e in stored) == [f"event_{n:03d}" for n in range(200)]
    assert sorted(e.raw for e in stored) == sorted(bodies)
    registry = receiver_state(app).metrics.registry
    writes = registry.get_sample_value("hookyard_receiver_enqueue_batch_size_count")
    assert registry.get_sample_value("hookyard_receiver_enqueue_batch_size_sum") == 200
    assert writes is not None
    assert writes < 200  # at least one write carried more than one event


async def test_client_gone_mid_body_gets_no_answer_and_no_error(settings: Settings) -> None:
    state = ReceiverState(settings)
    endpoint = WebhookEndpoint(settings.sources, settings.max_body_bytes, state)
    messages = [
        {"type": "http.request", "body": b'{"id": "event', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = _scope()
    await endpoint(scope, receive, send)

    assert sent == []
    record: RequestRecord = scope[REQUEST_RECORD]
    assert record.outcome == "disconnected"
    counter = state.metrics.registry.get_sample_value(
        "hookyard_receiver_requests_total", {"source": "workos", "outcome": "disconnected"}
    )
    assert counter == 1


def _scope(*, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": URL,
        "headers": headers or [],
        "path_params": {"source": "workos"},
    }
