"""Tests for receiver/app.py: routing, the ops-port split, the public surface, and no 500 for any input."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import orjson
import pytest
import redis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.testclient import TestClient

import receiver
from receiver import create_app, create_ops_app, receiver_state
from shared.logging import configure_logging
from shared.settings import Settings
from shared.signature import sign
from tests.conftest import TEST_SECRET
from tests.receiver.conftest import event_body, now_ms, serving, signed_headers

URL = "/webhooks/workos"
PROPERTY = hypothesis_settings(
    database=None,
    derandomize=True,
    deadline=None,
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def test_public_surface_is_pinned() -> None:
    assert sorted(receiver.__all__) == ["ReceiverState", "create_app", "create_ops_app", "receiver_state"]
    for name in receiver.__all__:
        assert getattr(receiver, name) is not None


async def test_ops_port_moves_probes_and_metrics_to_the_ops_app(
    base_env: dict[str, str], redis_client: redis.Redis
) -> None:
    # Given settings with an ops port
    settings = Settings.from_env({**base_env, "HOOKYARD_OPS_PORT": "9464"})
    app = create_app(settings)
    ops = create_ops_app(settings, receiver_state(app))

    async with serving(app) as client:
        ops_transport = httpx.ASGITransport(app=ops)
        async with httpx.AsyncClient(transport=ops_transport, base_url="http://ops") as ops_client:
            # Then the webhook app serves webhooks only
            for path in ("/metrics", "/healthz", "/readyz"):
                assert (await client.get(path)).status_code == 404
            body = event_body()
            assert (await client.post(URL, content=body, headers=signed_headers(body))).status_code == 200

            # And the ops app serves probes and the metrics of the same state
            assert (await ops_client.get("/healthz")).status_code == 200
            assert (await ops_client.get("/readyz")).json()["status"] == "ready"
            metrics = await ops_client.get("/metrics")
            assert 'hookyard_receiver_requests_total{outcome="accepted",source="workos"} 1.0' in metrics.text
            assert (await ops_client.post(URL)).status_code == 404
    assert redis_client.llen("{hy:inbox}:q") == 1


async def test_without_ops_port_everything_is_on_one_app(client: httpx.AsyncClient) -> None:
    for path in ("/metrics", "/healthz", "/readyz"):
        assert (await client.get(path)).status_code == 200


async def test_routing_misses_answer_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json() == {"error": "not_found"}

    wrong_method = await client.post("/healthz")
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error": "method_not_allowed"}
    assert "GET" in wrong_method.headers["allow"]

    assert (await client.post("/webhooks/")).status_code == 404
    assert (await client.post("/webhooks/workos/extra")).status_code == 404


async def test_a_genuine_bug_is_a_logged_500(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an app whose metrics blow up before it answers (a stand-in for a bug: no input reaches this)
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    app = create_app(settings)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(receiver_state(app).metrics, "observe_signature_failure", broken)
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
                response = await client.post(URL, content=b"{}")
    finally:
        configure_logging("info", "json")

    assert response.status_code == 500
    assert response.json() == {"error": "internal_error"}
    errors = [orjson.loads(line) for line in stream.getvalue().splitlines() if "unhandled_error" in line]
    assert errors
    assert "RuntimeError: bug" in str(errors[0]["exception"])


@pytest.fixture
def sync_client(settings: Settings) -> Iterator[TestClient]:
    app: Starlette = create_app(settings)
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client


_ascii = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=120)
_sources = st.sampled_from(["workos", "workos", "other"]) | st.from_regex(r"[A-Za-z0-9_%.-]{1,40}", fullmatch=True)
_field_values = st.none() | st.integers(-(2**63), 2**63 - 1) | _ascii | st.dictionaries(_ascii, _ascii, max_size=2)
_envelopes = st.dictionaries(st.sampled_from(["id", "event", "data", "created_at"]), _field_values, max_size=4)
_bodies = st.binary(max_size=512) | st.builds(orjson.dumps, _envelopes)


def _signatures(body: bytes) -> st.SearchStrategy[str | None]:
    def signed(skew_ms: int) -> str:
        return sign(body, TEST_SECRET.encode(), max(0, now_ms() + skew_ms))

    return st.none() | _ascii | st.builds(signed, st.integers(-400_000, 400_000))


@PROPERTY
@given(data=st.data())
def test_no_input_yields_a_500(sync_client: TestClient, data: st.DataObject) -> None:
    # Given any method, source segment, body and signature header a client can send
    method = data.draw(st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE", "OPTIONS"]))
    source = data.draw(_sources)
    body = data.draw(_bodies)
    header = data.draw(_signatures(body))
    headers = {} if header is None else {"WorkOS-Signature": header}

    # When it is sent, the answer is a deliberate one: never a 500
    response = sync_client.request(method, f"/webhooks/{source}", content=body, headers=headers)

    assert response.status_code in {200, 400, 401, 404, 405, 413}
    assert response.headers["content-type"] == "application/json"
