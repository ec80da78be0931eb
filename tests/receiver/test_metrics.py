"""Tests for receiver/metrics.py: names and labels after traffic, bounded label values, one registry per app."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from receiver import create_app
from receiver.metrics import ReceiverMetrics
from shared.settings import Settings
from tests.receiver.conftest import event_body, now_ms, signed_headers

URL = "/webhooks/workos"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _label_values(text: str, label: str) -> set[str]:
    return {
        sample.labels[label]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if label in sample.labels
    }


async def _traffic(client: httpx.AsyncClient) -> None:
    body = event_body()
    await client.post(URL, content=body, headers=signed_headers(body))
    await client.post(URL, content=body, headers=signed_headers(body, at_ms=now_ms() - 3_600_000))
    await client.post(URL, content=b"[]", headers=signed_headers(b"[]"))
    await client.get(URL)


async def test_metrics_after_traffic_have_the_expected_names_and_labels(client: httpx.AsyncClient) -> None:
    await _traffic(client)

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = _samples(response.text)
    requests = "hookyard_receiver_requests_total"
    assert samples[requests, (("outcome", "accepted"), ("source", "workos"))] == 1
    assert samples[requests, (("outcome", "invalid_signature"), ("source", "workos"))] == 1
    assert samples[requests, (("outcome", "invalid_event"), ("source", "workos"))] == 1
    assert samples[requests, (("outcome", "method_not_allowed"), ("source", "workos"))] == 1
    failures = "hookyard_receiver_signature_failures_total"
    assert samples[failures, (("reason", "stale"), ("source", "workos"))] == 1
    assert samples["hookyard_receiver_request_duration_seconds_count", (("outcome", "accepted"),)] == 1
    assert samples["hookyard_receiver_enqueue_duration_seconds_count", ()] == 1
    assert samples["hookyard_receiver_enqueue_batch_size_sum", ()] == 1
    assert samples["hookyard_receiver_body_bytes_count", ()] == 3
    # Verified signatures only: the accepted one and the one with an invalid body.
    assert samples["hookyard_receiver_signature_age_seconds_count", ()] == 2


async def test_signature_age_buckets_span_both_sides_of_now(client: httpx.AsyncClient) -> None:
    body = event_body()
    await client.post(URL, content=body, headers=signed_headers(body, at_ms=now_ms() + 20_000))

    samples = _samples((await client.get("/metrics")).text)

    age = "hookyard_receiver_signature_age_seconds_bucket"
    assert samples[age, (("le", "-180.0"),)] == 0
    assert samples[age, (("le", "-10.0"),)] == 1  # 20 s in the future
    assert samples[age, (("le", "180.0"),)] == 1


async def test_an_unknown_source_creates_no_label_value(client: httpx.AsyncClient) -> None:
    before = _label_values((await client.get("/metrics")).text, "source")

    for name in ("evil", "x" * 200, "%F0%9F%92%A5"):
        body = event_body()
        response = await client.post(f"/webhooks/{name}", content=body, headers=signed_headers(body))
        assert response.status_code == 404

    text = (await client.get("/metrics")).text
    assert _label_values(text, "source") == before == {"workos", "unknown"}
    samples = _samples(text)
    assert samples["hookyard_receiver_requests_total", (("outcome", "unknown_source"), ("source", "unknown"))] == 3


async def test_each_app_has_its_own_registry(settings: Settings) -> None:
    # Building two apps in one process must not collide in prometheus_client's global registry.
    first = create_app(settings)
    second = create_app(settings)

    assert first.state.receiver.metrics.registry is not second.state.receiver.metrics.registry


def test_configured_sources_get_their_own_label_values() -> None:
    metrics = ReceiverMetrics(["workos", "billing"])

    text = metrics.exposition().decode()

    assert _label_values(text, "source") == {"workos", "billing", "unknown"}
