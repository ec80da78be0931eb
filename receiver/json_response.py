"""Sending a small JSON answer straight through ASGI `send`, without building a Starlette `Response`."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from starlette.types import Send

__all__ = ["dump_json", "send_json"]

_JSON = (b"content-type", b"application/json")


def dump_json(payload: object) -> bytes:
    return orjson.dumps(payload)


async def send_json(
    send: Send,
    status: int,
    body: bytes,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    """Answer with `body` (already JSON-encoded: static answers are encoded once, at import)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON, (b"content-length", b"%d" % len(body)), *extra_headers],
        }
    )
    await send({"type": "http.response.body", "body": body})
