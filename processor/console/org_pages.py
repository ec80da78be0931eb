"""Organizations, when the WorkOS mirror is enabled (`HOOKYARD_MIRROR_URL`): SSO connection and directory state
and since when, user and group counts, the last event — read through processor/mirror/status.py."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import sqlalchemy
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from processor.console.rendering import console_of, page
from processor.mirror.status import mirror_engine, organization_page, organization_status

if TYPE_CHECKING:
    from processor.console.app import Console

__all__ = ["ROUTES"]

PAGE_SIZE = 50
#: Organizations one page reads at most while searching: a search few match answers with a "More" link that
#: goes on from there, instead of reading the whole mirror in one request.
SCAN_LIMIT = 2_000


@functools.cache
def _engine(url: str) -> sqlalchemy.Engine:
    # One engine (and its pool) per mirror URL for the life of the process.
    return mirror_engine(url)


async def organizations(request: Request) -> Response:
    console: Console = console_of(request)
    url = console.settings.mirror_url
    if url is None:
        return page(request, "organizations.html", 404, enabled=False, rows=[], search="", next_after=None)
    search = request.query_params.get("search", "").strip() or None
    after = request.query_params.get("after", "").strip() or None
    try:
        rows, next_after = await run_in_threadpool(
            functools.partial(
                organization_page, _engine(url), limit=PAGE_SIZE, after=after, search=search, scan_limit=SCAN_LIMIT
            )
        )
    except sqlalchemy.exc.SQLAlchemyError as exc:
        problem = f"the mirror database did not answer: {type(exc).__name__}"
        return page(request, "organizations.html", 503, enabled=True, rows=[], search=search or "", error=problem)
    return page(
        request, "organizations.html", enabled=True, rows=rows, search=search or "", next_after=next_after, error=None
    )


async def organization(request: Request) -> Response:
    console: Console = console_of(request)
    url = console.settings.mirror_url
    org_id = request.path_params["organization_id"]
    if url is None:
        return page(request, "organizations.html", 404, enabled=False, rows=[], search="", next_after=None)
    found = await run_in_threadpool(organization_status, _engine(url), org_id)
    if found is None:
        return page(request, "organization.html", 404, org=None, organization_id=org_id)
    return page(request, "organization.html", org=found, organization_id=org_id)


ROUTES = [
    Route("/organizations", organizations, name="organizations"),
    Route("/organizations/{organization_id}", organization, name="organization"),
]
