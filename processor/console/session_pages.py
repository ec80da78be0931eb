"""Signing in to the console with its token (a session cookie for the browser) and signing out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from processor.console.actions import audit
from processor.console.guard import COOKIE, SESSION_MAX_AGE_S, Access, new_session, same_origin, token_matches
from processor.console.rendering import console_of, page

__all__ = ["ROUTES"]


def sign_in_form(request: Request) -> Response:
    return page(request, "login.html", error=None)


async def sign_in(request: Request) -> Response:
    token = console_of(request).settings.console.token
    form = await request.form()
    given = form.get("token")
    anonymous = Access(actions_enabled=token is not None, signed_in=False, actor="anonymous")
    if token is None:
        return page(request, "login.html", 403, error="The console is read-only: HOOKYARD_CONSOLE_TOKEN is not set.")
    if not same_origin(request):
        audit(anonymous, "sign_in", "refused", reason="another origin")
        return page(request, "login.html", 403, error="Refused: the form came from another origin.")
    if not isinstance(given, str) or not token_matches(token, given):
        audit(anonymous, "sign_in", "refused", reason="wrong token")
        return page(request, "login.html", 403, error="That is not the console token.")
    cookie = new_session(token)
    audit(Access(True, True, f"session:{cookie[:8]}"), "sign_in", "ok")
    response = RedirectResponse("/", status_code=303)
    secure = request.url.scheme == "https"
    response.set_cookie(
        COOKIE, cookie, max_age=SESSION_MAX_AGE_S, httponly=True, samesite="strict", secure=secure, path="/"
    )
    return response


async def sign_out(request: Request) -> Response:
    if not same_origin(request):
        return PlainTextResponse("refused: the request came from another origin\n", status_code=403)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


ROUTES = [
    Route("/login", sign_in_form, methods=["GET"], name="login"),
    Route("/login", sign_in, methods=["POST"]),
    Route("/logout", sign_out, methods=["POST"], name="logout"),
]
