"""What every console action does before and after its work: refuse it unless the token allows it (read-only
mode, a missing or wrong CSRF field, another origin), and write one audit line saying who did what."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from processor.console.guard import Access, access_of, same_origin
from processor.console.rendering import console_of
from shared.logging import get_logger

__all__ = ["audit", "authorized_form"]

audit_log = get_logger("hookyard.console.audit")
#: A purge's confirmation names every letter it listed, one field each.
MAX_FORM_FIELDS = 100_000


async def authorized_form(request: Request, action: str) -> tuple[FormData, Access] | Response:
    """The action's form when the request may act; otherwise the 403 to answer (and an audit line)."""
    access = access_of(request, console_of(request).settings.console.token)
    form = await request.form(max_fields=MAX_FORM_FIELDS)
    csrf = form.get("csrf")
    reason = None
    if not access.actions_enabled:
        reason = "the console is read-only: HOOKYARD_CONSOLE_TOKEN is not set"
    elif not access.signed_in:
        reason = "sign in with the console token first"
    elif not access.bearer and not same_origin(request):
        reason = "the request came from another origin"
    elif not access.may_act(csrf if isinstance(csrf, str) else None):
        reason = "the form's CSRF field is missing or wrong: reload the page"
    if reason is not None:
        audit(access, action, "refused", reason=reason)
        return PlainTextResponse(f"refused: {reason}\n", status_code=403)
    return form, access


def audit(access: Access, action: str, outcome: str, **details: Any) -> None:
    """One audit line per action attempt: who (never the token), what, with what outcome."""
    audit_log.info("console.action", action=action, actor=access.actor, outcome=outcome, **details)
