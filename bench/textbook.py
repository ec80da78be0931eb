"""Contender 2, the textbook: what WorkOS's docs and Dramatiq's README lead a team to write.

The WorkOS SDK verifies and parses the event, and a Dramatiq actor (RedisBroker, default middleware) gets it
with `.send()` — called, as such code usually is, straight from the `async def` endpoint. Served by plain
`uvicorn bench.textbook:app` (uvicorn's defaults: uvloop and httptools when installed, access log on).
Configured by BENCH_REDIS_URL and BENCH_WEBHOOK_SECRET.
"""

from __future__ import annotations

import os
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from workos import WorkOSClient

__all__ = ["app", "handle_event"]

WEBHOOK_SECRET = os.environ["BENCH_WEBHOOK_SECRET"]

workos_client = WorkOSClient(api_key=os.environ.get("WORKOS_API_KEY", "sk_test_bench"))
dramatiq.set_broker(RedisBroker(url=os.environ["BENCH_REDIS_URL"]))  # type: ignore[no-untyped-call]


@dramatiq.actor
def handle_event(event: dict[str, Any]) -> None:
    """Where the team's event handling would go (the benchmark only enqueues; no worker runs here)."""


async def webhook(request: Request) -> JSONResponse:
    payload = await request.body()
    try:
        event = workos_client.webhooks.verify_event(
            event_body=payload,
            event_signature=request.headers.get("WorkOS-Signature", ""),
            secret=WEBHOOK_SECRET,
        )
    except ValueError:
        return JSONResponse({"error": "invalid signature"}, status_code=401)
    handle_event.send(event.to_dict())
    return JSONResponse({"status": "accepted", "id": event.id})  # type: ignore[union-attr]


app = Starlette(routes=[Route("/webhooks/{source}", webhook, methods=["POST"])])
