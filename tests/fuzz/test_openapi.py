"""The OpenAPI description (receiver/openapi.json, receiver/openapi.py) against the receiver that serves it.

In-process: every route is described, each app serves the description of its own paths, and every answer the
receiver can give validates against the documented schema. Live: schemathesis runs its examples, coverage and
fuzzing phases against a real `python -m receiver` on both of its ports and must find nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, get_args

import httpx
import jsonschema_rs
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

import receiver.openapi
from processor.devtools.embedded_redis import free_port
from receiver import create_app, create_ops_app, receiver_state
from receiver.openapi import OPENAPI_PATH, OPS_PATHS, WEBHOOK_PATHS, load_openapi
from receiver.webhook import RETRY_AFTER_S
from shared.errors import EnvelopeReason, SignatureReason
from shared.settings import Settings
from shared.signature import sign
from tests.conftest import TEST_SECRET
from tests.receiver.conftest import event_body, now_ms, serving, signed_headers
from tests.security.live_receiver import LiveReceiver, live_receiver

SHIPPED = Path(receiver.openapi.__file__).with_name("openapi.json")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
#: Per operation; with the coverage phase's own cases a run is ~130 requests per port, a few seconds.
SCHEMATHESIS_MAX_EXAMPLES = 50
# Most generated deliveries name the configured source, so they get past routing to the signature check.
SCHEMATHESIS_CONFIG = """\
[dictionaries.sources]
values = ["workos"]

[parameters]
"path.source" = { dictionary = "sources", probability = 0.8 }
"""

pytestmark = pytest.mark.slow


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(SHIPPED.read_text())
    return document


def _validator(document: dict[str, Any], path: str, method: str, status: int, media_type: str) -> Any:
    response = document["paths"][path][method]["responses"][str(status)]
    schema = response["content"][media_type]["schema"]
    return jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]})


def _assert_conforms(document: dict[str, Any], path: str, method: str, response: httpx.Response) -> None:
    operation = document["paths"][path][method]
    documented = operation["responses"].get(str(response.status_code))
    assert documented is not None, f"{method.upper()} {path}: {response.status_code} is not documented"
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in documented["content"], f"{media_type} is not documented for {response.status_code}"
    for name, header in documented.get("headers", {}).items():
        header = document["components"]["headers"][header["$ref"].rsplit("/", 1)[1]] if "$ref" in header else header
        if header.get("required"):
            assert name.lower() in response.headers, f"{name} missing from {response.status_code}"
    if media_type == "application/json":
        validator = _validator(document, path, method, response.status_code, media_type)
        errors = [error.message for error in validator.iter_errors(response.json())]
        assert not errors, (response.status_code, response.json(), errors)


# --- the description ---------------------------------------------------------------------------------------


def test_the_description_is_openapi_3_1_and_lists_every_path() -> None:
    document = _document()

    assert document["openapi"].startswith("3.1.")
    assert set(document["paths"]) == {*WEBHOOK_PATHS, *OPS_PATHS, OPENAPI_PATH}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], f"{method} {path} documents no response"
            assert operation["operationId"]


def test_the_documented_reasons_are_the_code_s() -> None:
    schemas = _document()["components"]["schemas"]

    assert schemas["InvalidSignature"]["properties"]["reason"]["enum"] == list(get_args(SignatureReason))
    assert schemas["InvalidEvent"]["properties"]["reason"]["enum"] == list(get_args(EnvelopeReason))


def test_the_answers_headers_are_documented() -> None:
    responses = _document()["paths"]["/webhooks/{source}"]["post"]["responses"]

    assert "Retry-After" in responses["503"]["headers"]
    assert "Connection" in responses["413"]["headers"]


def _route_paths(app: Starlette) -> set[str]:
    return {route.path for route in app.routes if isinstance(route, Route)}


async def test_each_app_serves_the_description_of_its_own_paths(base_env: dict[str, str]) -> None:
    # Given the receiver on one port, and split across two
    single = create_app(Settings.from_env(base_env))
    split_settings = Settings.from_env({**base_env, "HOOKYARD_OPS_PORT": str(free_port())})
    webhook_only = create_app(split_settings)
    ops = create_ops_app(split_settings, receiver_state(webhook_only))

    async with serving(single) as client:
        served_single = (await client.get(OPENAPI_PATH)).json()
    async with serving(webhook_only) as client:
        served_webhook = (await client.get(OPENAPI_PATH)).json()
        transport = httpx.ASGITransport(app=ops)
        async with httpx.AsyncClient(transport=transport, base_url="http://ops") as ops_client:
            served_ops = (await ops_client.get(OPENAPI_PATH)).json()

    # Then one port serves the shipped file as it is; split, each port lists exactly the paths it serves
    assert served_single == _document() == load_openapi()
    assert set(served_webhook["paths"]) == {*WEBHOOK_PATHS, OPENAPI_PATH}
    assert set(served_ops["paths"]) == {*OPS_PATHS, OPENAPI_PATH}
    assert _route_paths(single) | WEBHOOK_PATHS == set(served_single["paths"])
    assert _route_paths(webhook_only) | WEBHOOK_PATHS == set(served_webhook["paths"])
    assert _route_paths(ops) == set(served_ops["paths"])


# --- every answer conforms ----------------------------------------------------------------------------------


@pytest.fixture
async def client(base_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(Settings.from_env(base_env))) as client:
        yield client


async def test_every_answer_of_a_running_receiver_conforms(client: httpx.AsyncClient) -> None:
    document = _document()
    webhook = "/webhooks/{source}"
    url = "/webhooks/workos"
    valid = event_body("event_conforms")
    stale_signature = sign(valid, TEST_SECRET.encode(), now_ms() - 600_000)
    future_signature = sign(valid, TEST_SECRET.encode(), now_ms() + 600_000)
    deliveries: list[tuple[str, bytes, dict[str, str], int]] = [
        (url, valid, signed_headers(valid), 200),
        (url, b"not json", signed_headers(b"not json"), 400),
        (url, b"[]", signed_headers(b"[]"), 400),
        (url, b'{"event":"x","data":{}}', signed_headers(b'{"event":"x","data":{}}'), 400),
        (url, b'{"id":"e","data":{}}', signed_headers(b'{"id":"e","data":{}}'), 400),
        (url, b'{"id":"e","event":"x"}', signed_headers(b'{"id":"e","event":"x"}'), 400),
        (url, valid, {}, 401),
        (url, valid, {"WorkOS-Signature": "t=1"}, 401),
        (url, valid, {"WorkOS-Signature": stale_signature}, 401),
        (url, valid, {"WorkOS-Signature": future_signature}, 401),
        (url, valid, signed_headers(b"another body"), 401),
        ("/webhooks/nobody", valid, signed_headers(valid), 404),
        (url, b"x" * (1024 * 1024 + 1), {}, 413),
    ]
    for target, body, headers, expected in deliveries:
        response = await client.post(target, content=body, headers=headers)
        assert response.status_code == expected, response.text
        _assert_conforms(document, webhook, "post", response)

    for path in ("/healthz", "/readyz", "/metrics", OPENAPI_PATH):
        response = await client.get(path)
        assert response.status_code == 200
        _assert_conforms(document, path, "get", response)

    not_allowed = await client.get(url)
    assert not_allowed.status_code == 405
    assert not_allowed.headers["allow"] == "POST"


async def test_answers_without_redis_conform(base_env: dict[str, str]) -> None:
    # Given a receiver whose Redis is not there
    env = {**base_env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "HOOKYARD_ENQUEUE_TIMEOUT": "200ms"}
    app = create_app(Settings.from_env(env))
    body = event_body("event_unstored")
    document = _document()

    async with serving(app) as client:
        delivery = await client.post("/webhooks/workos", content=body, headers=signed_headers(body))
        readiness = await client.get("/readyz")

    # Then the 503s are the documented ones: Retry-After on the delivery, the Redis state on the probe
    assert delivery.status_code == 503
    assert delivery.headers["retry-after"] == str(RETRY_AFTER_S)
    _assert_conforms(document, "/webhooks/{source}", "post", delivery)
    assert readiness.status_code == 503
    _assert_conforms(document, "/readyz", "get", readiness)


async def test_the_500_of_a_bug_conforms(base_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an app whose metrics fail before it answers (a stand-in for a bug: no input reaches this)
    app = create_app(Settings.from_env(base_env))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(receiver_state(app).metrics, "observe_signature_failure", broken)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
            response = await client.post("/webhooks/workos", content=b"{}")

    assert response.status_code == 500
    _assert_conforms(_document(), "/webhooks/{source}", "post", response)


# --- schemathesis against a live receiver ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def split_receiver(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveReceiver]:
    if not redis_server.running:
        redis_server.start()
    with live_receiver(tmp_path_factory.mktemp("openapi-receiver"), redis_server.url, ops_port=True) as live:
        yield live
        assert live.alive(), live.output()
        assert live.stop() == 0, live.output()


def _schemathesis(base_url: str, workdir: Path) -> dict[str, Any]:
    """Run `schemathesis run` (all checks, deterministic) on `base_url`'s description; its JSON report."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    report = workdir / "report.json"
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        f"{base_url}{OPENAPI_PATH}",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(SCHEMATHESIS_MAX_EXAMPLES),
        "--generation-deterministic",
        "--request-timeout",
        "5",
        "--workers",
        "2",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    # The working directory is the test's own: nothing (reports, example databases) lands in the repository.
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    summary: dict[str, Any] = json.loads(report.read_text())
    return summary


@pytest.mark.parametrize("port", ["webhook", "ops"])
def test_schemathesis_finds_nothing_against_a_live_receiver(
    split_receiver: LiveReceiver, tmp_path: Path, port: str
) -> None:
    base_url = split_receiver.url if port == "webhook" else split_receiver.ops_url

    report = _schemathesis(base_url, tmp_path / port)

    assert report["failures"] == [], report["failures"]
    assert report["errors"] == [], report["errors"]
    assert report["operations"]["errored"] == 0
    # The examples phase runs only where the description has examples (the webhook path)
    assert report["phases"]["examples"]["status"] == ("success" if port == "webhook" else "skip"), report["phases"]
    for phase in ("coverage", "fuzzing"):
        assert report["phases"][phase]["status"] == "success", report["phases"]
    assert report["test_cases"]["generated"] >= 20
