"""The receiver's OpenAPI 3.1 description (`receiver/openapi.json`), served at `GET /openapi.json`.

The shipped file describes every path; each app serves it trimmed to the paths it serves itself, so with
`HOOKYARD_OPS_PORT` set neither port advertises a path that answers 404 there.
"""

from __future__ import annotations

from collections.abc import Collection
from importlib.resources import files
from typing import Any, Final

import orjson
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from receiver.json_response import send_json

__all__ = ["OPENAPI_PATH", "OPS_PATHS", "WEBHOOK_PATHS", "OpenAPIEndpoint", "load_openapi", "openapi_route"]

OPENAPI_PATH: Final = "/openapi.json"
#: The paths of the webhook app, and those that move to the ops app when `HOOKYARD_OPS_PORT` is set.
WEBHOOK_PATHS: Final = frozenset({"/webhooks/{source}"})
OPS_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})


def load_openapi(paths: Collection[str] | None = None) -> dict[str, Any]:
    """The shipped description; with `paths`, only those paths (plus `/openapi.json` itself) are kept."""
    document: dict[str, Any] = orjson.loads(files("receiver").joinpath("openapi.json").read_bytes())
    if paths is not None:
        keep = {*paths, OPENAPI_PATH}
        document["paths"] = {path: item for path, item in document["paths"].items() if path in keep}
    return document


class OpenAPIEndpoint:
    """`GET /openapi.json`: one description, encoded once when the app is built."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._body = orjson.dumps(document)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, 200, self._body)


def openapi_route(paths: Collection[str]) -> Route:
    """The `/openapi.json` route of an app that serves `paths`."""
    return Route(OPENAPI_PATH, endpoint=OpenAPIEndpoint(load_openapi(paths)), methods=["GET"], name="openapi")
