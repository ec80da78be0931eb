"""Serving the receiver with uvicorn (uvloop + httptools): the webhook port, and the ops port when configured.

Both servers run on one event loop and share one `ReceiverState`. SIGTERM/SIGINT stop both gracefully: no new
connections, in-flight requests finish (each either stored and 200, or 503), then the inbox drains and the
Redis client closes. A clean stop exits 0.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, Literal

import uvicorn
import uvloop
from starlette.types import ASGIApp

from receiver.app import create_app, create_ops_app, receiver_state
from receiver.http_protocol import BoundedHttpToolsProtocol
from shared.logging import get_logger
from shared.settings import Settings

__all__ = ["EXIT_OK", "EXIT_STARTUP_FAILURE", "run", "serve"]

EXIT_OK: Final = 0
EXIT_STARTUP_FAILURE: Final = 3  # uvicorn's own code for "could not start"

#: Concurrent requests before the receiver answers 503 itself (idle connections do not count, see
#: receiver/http_protocol.py). Each request may buffer up to HOOKYARD_MAX_BODY_BYTES, so this bounds memory as
#: well as queueing (1024 x 1 MiB by default).
LIMIT_CONCURRENCY: Final = 1024
BACKLOG: Final = 2048
KEEP_ALIVE_S: Final = 5
GRACEFUL_SHUTDOWN_S: Final = 10

# A logger is fetched where it is used: one bound at import would keep the logging setup of import time.
_LOGGER = "hookyard.receiver.server"


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals to `serve()`.

    uvicorn's own capture would let only the last of two servers see SIGTERM, and re-raises the signal after a
    graceful shutdown, so the process would die of SIGTERM instead of exiting 0.
    """

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _config(app: ASGIApp, host: str, port: int, *, lifespan: Literal["on", "off"]) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=BoundedHttpToolsProtocol,  # httptools, with head/body deadlines and a head size limit
        ws="none",
        lifespan=lifespan,
        access_log=False,  # receiver/access_log.py logs each webhook request
        log_config=None,  # keep the structlog setup of configure_logging()
        server_header=False,
        proxy_headers=False,  # nothing here uses the client address
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        limit_concurrency=LIMIT_CONCURRENCY,
        backlog=BACKLOG,
        h11_max_incomplete_event_size=16 * 1024,  # only if h11 is ever chosen: bounds request line + headers
    )


def _tune_gc() -> None:
    # A request allocates a few hundred short-lived objects, almost all freed by reference counting; with the
    # default threshold (700) a generation-0 collection ran every couple of requests, re-scanning the app's
    # long-lived objects too. Freezing what start-up built and collecting generation 0 far less often cut
    # ~8 µs of CPU per request (docs/benchmarks.md). Reference cycles are still collected, just in bigger batches.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 50)


async def serve(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT; returns the process exit code."""
    app = create_app(settings)
    servers = [_Server(_config(app, settings.host, settings.port, lifespan="on"))]
    if settings.ops_port is not None:
        ops_app = create_ops_app(settings, receiver_state(app))
        # The webhook app's lifespan owns the shared state; the ops app has none of its own.
        servers.append(_Server(_config(ops_app, settings.host, settings.ops_port, lifespan="off")))
    _tune_gc()

    def stop(signum: int) -> None:
        get_logger(_LOGGER).info("receiver.stopping", signal=signal.Signals(signum).name)
        for server in servers:
            if server.should_exit and signum == signal.SIGINT:
                server.force_exit = True  # a second Ctrl-C skips the drain, as in uvicorn
            server.should_exit = True

    loop = asyncio.get_running_loop()
    handled = (signal.SIGTERM, signal.SIGINT)
    for signum in handled:
        loop.add_signal_handler(signum, stop, signum)
    try:
        await asyncio.gather(*(server.serve() for server in servers))
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
    return EXIT_OK if all(server.started for server in servers) else EXIT_STARTUP_FAILURE


def run(settings: Settings) -> int:
    """Run the receiver on a uvloop event loop until stopped; returns the process exit code."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve(settings))
