"""The receiver's ASGI apps: the webhook app, and the ops app when probes and metrics get their own port.

`create_app(settings)` serves `POST /webhooks/{source}`, plus `/healthz`, `/readyz` and `/metrics` unless
`ops_port` is set; then `create_ops_app(settings, state)` serves those three over the webhook app's state.
Both serve `/openapi.json`, the description of their own paths.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from receiver.access_log import AccessLog
from receiver.dispatch import WebhookDispatch
from receiver.health import Liveness, Readiness
from receiver.metrics import MetricsEndpoint
from receiver.openapi import OPS_PATHS, WEBHOOK_PATHS, openapi_route
from receiver.state import ReceiverState
from receiver.webhook import WebhookEndpoint
from shared.clock import wall_ms
from shared.logging import get_logger
from shared.settings import Settings

__all__ = ["create_app", "create_ops_app", "receiver_state"]

# A logger is fetched where it is used: one bound at import would keep the logging setup of import time.
_LOGGER = "hookyard.receiver"


def create_app(settings: Settings, *, clock_ms: Callable[[], int] | None = None) -> Starlette:
    """The webhook app; its lifespan opens Redis and the inbox writer and drains them on shutdown.

    `clock_ms` (unix ms) replaces the wall clock for signature freshness and receive times, for tests.
    """
    state = ReceiverState(settings)
    webhook = WebhookEndpoint(settings.sources, settings.max_body_bytes, state, clock_ms=clock_ms or wall_ms)
    readiness = Readiness(state)
    routes = [] if settings.ops_port is not None else _ops_routes(state, readiness)
    routes.append(openapi_route(WEBHOOK_PATHS if settings.ops_port is not None else WEBHOOK_PATHS | OPS_PATHS))
    app = WebhookDispatch(
        AccessLog(webhook),
        routes=routes,
        lifespan=_lifespan(state, readiness),
        exception_handlers=_EXCEPTION_HANDLERS,
    )
    app.state.receiver = state
    return app


def create_ops_app(settings: Settings, state: ReceiverState) -> Starlette:
    """Probes and metrics over `state` (owned by the webhook app), for serving on `settings.ops_port`."""
    routes = [*_ops_routes(state, Readiness(state)), openapi_route(OPS_PATHS)]
    return Starlette(routes=routes, exception_handlers=_EXCEPTION_HANDLERS)


def receiver_state(app: Starlette) -> ReceiverState:
    """The state `create_app` built, to hand to `create_ops_app`."""
    state: ReceiverState = app.state.receiver
    return state


def _ops_routes(state: ReceiverState, readiness: Readiness) -> list[BaseRoute]:
    return [
        Route("/healthz", endpoint=Liveness(), methods=["GET"], name="healthz"),
        Route("/readyz", endpoint=readiness, methods=["GET"], name="readyz"),
        Route("/metrics", endpoint=MetricsEndpoint(state.metrics), methods=["GET"], name="metrics"),
    ]


def _lifespan(state: ReceiverState, readiness: Readiness) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await state.open()
        try:
            report = await readiness.check()
            # Not fatal: deliveries get 503 (and are retried by the sender) until Redis answers.
            if not report.ready:
                get_logger(_LOGGER).warning("receiver.redis_unavailable_at_start", redis=report.redis)
            for warning in report.warnings:
                get_logger(_LOGGER).warning("receiver.redis_durability", warning=warning)
            yield
        finally:
            await state.close()

    return lifespan


async def _http_error(request: Request, exc: Exception) -> Response:
    # Routing misses (404, 405) on the fixed routes: JSON like every other answer.
    status_code: int = getattr(exc, "status_code", 500)
    error = {404: "not_found", 405: "method_not_allowed"}.get(status_code, "http_error")
    return JSONResponse({"error": error}, status_code=status_code, headers=getattr(exc, "headers", None))


async def _server_error(request: Request, exc: Exception) -> Response:
    # Only a bug in the probe or metrics routes gets here (no input can cause one; the webhook endpoint guards
    # itself). Starlette re-raises after this response, so uvicorn logs the traceback as well.
    get_logger(_LOGGER).error("receiver.unhandled_error", path=request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal_error"}, status_code=500)


_EXCEPTION_HANDLERS = {HTTPException: _http_error, Exception: _server_error}
