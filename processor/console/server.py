"""Serving the console with uvicorn on HOOKYARD_CONSOLE_HOST:HOOKYARD_CONSOLE_PORT (loopback unless configured)."""

from __future__ import annotations

import uvicorn

from processor.console.app import build_app
from processor.handlers import Registry
from shared.logging import get_logger
from shared.settings import Settings

__all__ = ["serve"]

log = get_logger("hookyard.console")


def serve(settings: Settings, registry: Registry) -> None:
    """Run the console until SIGINT/SIGTERM (uvicorn's graceful shutdown)."""
    app = build_app(settings, registry)
    config = uvicorn.Config(
        app,
        host=settings.console.host,
        port=settings.console.port or 0,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
    )
    log.info(
        "console.starting",
        host=settings.console.host,
        port=settings.console.port,
        read_only=settings.console.token is None,
        redacted_paths=len(settings.console.redact),
    )
    uvicorn.Server(config).run()
