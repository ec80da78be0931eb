"""The console's Starlette application: routes, templates, static assets, security headers, and the history
sampler started and stopped with it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from processor.cli.context import metrics_url, redis_trouble
from processor.console import event_pages, letter_pages, org_pages, overview_page, session_pages
from processor.console.guard import SecurityHeaders
from processor.console.history import Sampler
from processor.console.rendering import page, templates
from processor.handlers import Registry
from processor.records import StoreTimings
from shared.console_settings import ConsoleSettings
from shared.logging import get_logger
from shared.redis_clients import OPERATOR, redis_client
from shared.settings import DEFAULT_SOURCE, Settings

__all__ = ["Console", "build_app"]

_HERE = Path(__file__).resolve().parent
log = get_logger("hookyard.console")


@dataclass(slots=True)
class Console:
    """What every page works with: settings, one Redis client, the handlers as this process loaded them."""

    settings: Settings
    client: redis.Redis
    registry: Registry
    sampler: Sampler
    timings: StoreTimings

    @property
    def sources(self) -> list[str]:
        return sorted({DEFAULT_SOURCE, *self.settings.sources})


async def _store_trouble(request: Request, exc: Exception) -> Response:
    # Redis down, frozen or refusing: one line saying what is wrong and what to do, not a traceback.
    assert isinstance(exc, redis.RedisError)
    finding, hint = redis_trouble(exc, request.app.state.console.settings.redis_url)
    log.warning("console.store_unavailable", error=type(exc).__name__)
    return page(request, "error.html", 503, finding=finding, hint=hint)


class _ConsoleApp(Starlette):
    """Starlette with the security headers outermost: the 500 page, written by Starlette's outermost error
    middleware, carries them too."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(super().build_middleware_stack())


def allowed_hosts(console: ConsoleSettings) -> list[str]:
    """The Host header names the console answers to: loopback, the address it listens on, and the configured
    ones. Any other name is refused (400), so a page that rebinds its own DNS name to the console's address
    cannot read it."""
    bound = console.host.strip("[]")
    listening = f"[{bound}]" if ":" in bound else bound
    return sorted({"127.0.0.1", "localhost", "[::1]", listening, *console.allowed_hosts})


def build_app(settings: Settings, registry: Registry, *, sample: bool = True) -> Starlette:
    """The console for `settings`; `sample=False` leaves the history sampler off (tests that record points
    themselves)."""
    client = redis_client(settings.redis_url, OPERATOR)
    url = metrics_url(settings.host, settings.worker_metrics_port) if settings.worker_metrics_port else None
    sampler = Sampler(client, url, settings.console.sample_interval_s)
    console = Console(settings, client, registry, sampler, StoreTimings.from_settings(settings))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if sample:
            sampler.start()
        try:
            yield
        finally:
            sampler.stop()
            client.close()

    routes = [
        Route("/", overview_page.overview, name="overview"),
        *event_pages.ROUTES,
        *letter_pages.ROUTES,
        *org_pages.ROUTES,
        *session_pages.ROUTES,
        Mount("/static", StaticFiles(directory=_HERE / "static"), name="static"),
    ]
    app = _ConsoleApp(
        routes=routes,
        middleware=[
            Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(settings.console), www_redirect=False),
        ],
        exception_handlers={redis.RedisError: _store_trouble},
        lifespan=lifespan,
    )
    app.state.console = console
    app.state.templates = templates()
    return app
