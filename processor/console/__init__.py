"""The web console: what the CLI shows (backlog, events, dead letters, the WorkOS mirror's organizations) as pages
for the person on call, and its actions (replay, purge, resend) behind a token. Starlette, server-rendered
templates and a little plain JavaScript; every asset ships in this package."""

from __future__ import annotations

from processor.console.app import build_app

__all__ = ["build_app"]
