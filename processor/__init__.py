"""Hookyard's processor: dedupes, orders and dispatches accepted events to registered handlers.

The public handler API::

    from processor import Event, RetryLater, handler

    @handler("dsync.user.*")
    def sync_user(event: Event) -> None: ...
"""

from __future__ import annotations

# Handler API
from processor.event import Event
from processor.handlers import HandlerSpec, Registry, RetryLater, default_registry, handler

__all__ = [
    # Handler API
    "Event",
    "HandlerSpec",
    "Registry",
    "RetryLater",
    "default_registry",
    "handler",
]
