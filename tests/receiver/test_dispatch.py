"""Tests for receiver/dispatch.py: which paths reach the webhook endpoint directly, and which go to Starlette."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from receiver.dispatch import WebhookDispatch


class _Recorder:
    def __init__(self) -> None:
        self.sources: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.sources.append(scope["path_params"]["source"])
        await PlainTextResponse("webhook")(scope, receive, send)


async def _other(request: Any) -> PlainTextResponse:
    return PlainTextResponse("other")


async def _call(app: WebhookDispatch, path: str, root_path: str = "") -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": root_path + path,
        "root_path": root_path,
        "raw_path": (root_path + path).encode(),
        "query_string": b"",
        "headers": [],
    }
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


@pytest.fixture
def recorder() -> _Recorder:
    return _Recorder()


@pytest.fixture
def app(recorder: _Recorder) -> WebhookDispatch:
    return WebhookDispatch(recorder, routes=[Route("/other", _other, methods=["POST"])])


@pytest.mark.parametrize(("path", "source"), [("/webhooks/workos", "workos"), ("/webhooks/x-y_z", "x-y_z")])
async def test_one_segment_goes_to_the_webhook(
    app: WebhookDispatch, recorder: _Recorder, path: str, source: str
) -> None:
    assert await _call(app, path) == (200, b"webhook")
    assert recorder.sources == [source]


@pytest.mark.parametrize("path", ["/webhooks/", "/webhooks", "/webhooks/a/b", "/webhook/a", "/nowhere"])
async def test_anything_else_is_left_to_starlette(app: WebhookDispatch, recorder: _Recorder, path: str) -> None:
    status, _ = await _call(app, path)

    assert status == 404
    assert recorder.sources == []


async def test_other_routes_still_work(app: WebhookDispatch) -> None:
    assert await _call(app, "/other") == (200, b"other")


async def test_paths_are_matched_below_the_root_path(app: WebhookDispatch, recorder: _Recorder) -> None:
    assert await _call(app, "/webhooks/workos", root_path="/hooks") == (200, b"webhook")
    assert recorder.sources == ["workos"]
