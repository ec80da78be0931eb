"""`hookyard console`: serve the web console (overview, events, dead letters, organizations) on
HOOKYARD_CONSOLE_HOST:HOOKYARD_CONSOLE_PORT until Ctrl-C. Read-only unless HOOKYARD_CONSOLE_TOKEN is set."""

from __future__ import annotations

import argparse
import dataclasses

from processor.cli.arguments import Verbs
from processor.cli.context import client_host, settings_for_redis
from processor.cli.render import say
from processor.event_lookup import registry_or_none
from processor.handlers import Registry

__all__ = ["DEFAULT_PORT", "add_parser"]

#: Where `hookyard console` listens when HOOKYARD_CONSOLE_PORT is not set (the fleet serves it only when set).
DEFAULT_PORT = 8090


def add_parser(verbs: Verbs) -> None:
    console = verbs.add_parser(
        "console",
        help="serve the web console: backlog, events, dead letters, organizations",
        description=(
            "Serve the web console on HOOKYARD_CONSOLE_HOST (default 127.0.0.1) and HOOKYARD_CONSOLE_PORT "
            f"(default {DEFAULT_PORT} here) until Ctrl-C. Without HOOKYARD_CONSOLE_TOKEN it is read-only; with it, "
            "replay, purge and resend are offered to whoever signs in with the token."
        ),
    )
    console.add_argument("--host", metavar="HOST", help="listen on this address instead of HOOKYARD_CONSOLE_HOST")
    console.add_argument("--port", type=int, metavar="PORT", help="listen on this port instead")
    console.set_defaults(run=_run)


def _run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    from processor.console.server import serve  # the web stack only for this verb

    settings = settings_for_redis(environ)
    console = settings.console
    settings = dataclasses.replace(
        settings,
        console=dataclasses.replace(
            console, host=args.host or console.host, port=args.port or console.port or DEFAULT_PORT
        ),
    )
    registry = registry_or_none(settings) or Registry()
    mode = "actions need the token" if settings.console.token else "read-only (HOOKYARD_CONSOLE_TOKEN not set)"
    say(f"console on http://{client_host(settings.console.host)}:{settings.console.port}/ — {mode}")
    serve(settings, registry)
    return 0
