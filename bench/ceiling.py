"""Contender 1, the ceiling: a bare Starlette app on uvicorn that reads the body and answers 200.

No signature check, no storage, no log line: what any receiver on this stack costs at the least. Served by
`uvicorn bench.ceiling:app --loop uvloop --http httptools --no-access-log`.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

__all__ = ["app"]


async def webhook(request: Request) -> Response:
    await request.body()
    return Response(b'{"status":"accepted"}', media_type="application/json")


app = Starlette(routes=[Route("/webhooks/{source}", webhook, methods=["POST"])])
