"""How console pages are rendered: the Jinja2 environment (autoescaped, templates shipped in the package), the
filters for times and ages, and the context every page gets (who is signed in, the CSRF field, the nav)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from processor.cli.render import age, iso
from processor.console.guard import access_of
from shared.clock import wall_ms

__all__ = ["console_of", "page", "templates"]

_TEMPLATES = Path(__file__).resolve().parent / "templates"


def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=_TEMPLATES)
    found.env.filters["iso"] = iso
    found.env.filters["age"] = lambda seconds: age(seconds) or "-"
    found.env.filters["at"] = _at
    found.env.filters["ago"] = lambda ms: (age((wall_ms() - ms) / 1000) or "-") if ms else "-"
    found.env.globals["event_href"] = event_href
    return found


def event_href(source: str, event_id: str, then: str = "") -> str:
    """The path of an event's page (`then`: of one of its actions). Every character of an id that means
    something in a path or URL (`/`, `?`, `#`, `%`) is escaped; the route takes the rest of the path as the id."""
    return f"/events/{quote(source, safe='')}/{quote(event_id, safe='')}{then}"


def _at(when: datetime | None) -> str:
    # The mirror's times, as the console shows every time (UTC, milliseconds); a naive one is UTC.
    if when is None:
        return "-"
    aware = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return iso(int(aware.timestamp() * 1000)) or "-"


def console_of(request: Request) -> Any:
    """The `Console` of the app serving `request` (processor/console/app.py)."""
    return request.app.state.console


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """Render `template` with the page context every template relies on."""
    console = console_of(request)
    access = access_of(request, console.settings.console.token)
    response: Response = request.app.state.templates.TemplateResponse(
        request,
        template,
        {
            "access": access,
            "mirror": console.settings.mirror_url is not None,
            "path": request.url.path,
            **context,
        },
        status_code=status_code,
    )
    return response
