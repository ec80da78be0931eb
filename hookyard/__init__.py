"""Hookyard, for handler authors: the one import a handler module needs.

    from hookyard import Event, RetryLater, handler

    @handler("dsync.user.*", order_by="resource", max_attempts=8, timeout=60)
    def sync_user(event: Event) -> None: ...

Tests use `hookyard.testing` (a `Harness` on a private Redis) or the `hookyard` pytest fixture. Apps read the
built-in WorkOS mirror with `hookyard.mirror`. Everything else
(`receiver`, `processor`, `shared`) is the service itself, not an API.
"""

from __future__ import annotations

# Writing a handler
from processor.event import Event
from processor.handlers import HandlerOptions, Registry, RetryLater, Unprocessable, handler

__all__ = [
    # Writing a handler
    "Event",
    "HandlerOptions",
    "Registry",
    "RetryLater",
    "Unprocessable",
    "handler",
]
