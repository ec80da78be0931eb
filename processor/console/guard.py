"""Who may act in the console, and the headers every answer carries.

Reading needs nothing (the console listens on loopback unless configured otherwise). Acting — replay, purge,
resend — needs `HOOKYARD_CONSOLE_TOKEN`, compared in constant time, given either

- as `Authorization: Bearer <token>` (scripts: a browser never adds that header by itself, so no CSRF), or
- once, on the sign-in form: the console then sets a session cookie (`HttpOnly`, `SameSite=Strict`) holding a
  random nonce and its HMAC under the token, and every action form carries a CSRF field, the HMAC of the same
  nonce under another label. A forged cross-site form has neither the cookie (SameSite) nor the field. The nonce
  ends with the time it was issued (under the MAC): a session ends SESSION_MAX_AGE_S after signing in.

Without a token the console is read-only: every action is refused. Nothing here keeps state: a restart with the
same token keeps sessions valid, a new token ends them all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "COOKIE",
    "SESSION_MAX_AGE_S",
    "Access",
    "SecurityHeaders",
    "access_of",
    "new_session",
    "same_origin",
    "token_matches",
]

COOKIE = "hookyard_console"
#: A session ends this long after signing in, whatever the browser keeps.
SESSION_MAX_AGE_S = 12 * 3600

#: No inline script or style anywhere: every asset is a file under /static.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = [
    (b"content-security-policy", _CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the security headers to every response (pure ASGI, so streamed responses get them too)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in _HEADERS if name not in present]
                if b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


@dataclass(frozen=True, slots=True)
class Access:
    """What the person behind a request may do."""

    #: A token is configured: actions exist at all.
    actions_enabled: bool
    #: Signed in (a valid session cookie) or holding the token (bearer).
    signed_in: bool
    #: How the audit log names them: "bearer", "session:<first 8 of the nonce>" or "anonymous".
    actor: str
    #: The CSRF value this session's forms carry ("" without a session).
    csrf: str = ""
    bearer: bool = False

    def may_act(self, csrf_field: str | None) -> bool:
        """Whether an action request may go ahead: a bearer token, or a session with its CSRF field."""
        if not self.actions_enabled or not self.signed_in:
            return False
        if self.bearer:
            return True
        return bool(csrf_field) and _same(csrf_field or "", self.csrf)


def new_session(token: bytes, issued_s: int | None = None) -> str:
    """A session cookie value for someone who just gave the token (now, unless `issued_s` says when)."""
    issued = int(time.time()) if issued_s is None else issued_s
    nonce = f"{secrets.token_urlsafe(18)}-{issued}"
    return f"{nonce}.{_mac(token, 'session', nonce)}"


def _fresh(nonce: str) -> bool:
    """Whether the session the nonce names was issued within SESSION_MAX_AGE_S (the MAC covers the time)."""
    issued = nonce.rpartition("-")[2]
    if not (issued.isascii() and issued.isdigit() and len(issued) <= 12):
        return False
    return 0 <= time.time() - int(issued) <= SESSION_MAX_AGE_S


def token_matches(token: bytes, given: str) -> bool:
    return hmac.compare_digest(given.encode(), token)


def access_of(request: Request, token: bytes | None) -> Access:
    """What the request's cookie or bearer header allows."""
    if token is None:
        return Access(actions_enabled=False, signed_in=False, actor="anonymous")
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() == "bearer" and given:
        if token_matches(token, given.strip()):
            return Access(True, True, "bearer", bearer=True)
        return Access(True, False, "anonymous")
    nonce, _, mac = request.cookies.get(COOKIE, "").partition(".")
    if nonce and mac and _same(mac, _mac(token, "session", nonce)) and _fresh(nonce):
        return Access(True, True, f"session:{nonce[:8]}", csrf=_mac(token, "csrf", nonce))
    return Access(True, False, "anonymous")


def same_origin(request: Request) -> bool:
    """False when the browser says the request came from another origin.

    `Sec-Fetch-Site` decides when the browser sends it. The `Origin` of a form post is "null" under our
    `Referrer-Policy: no-referrer`, so it decides only when it names an origin; without either, the CSRF field
    and the SameSite cookie are the defence."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return origin.split("://", 1)[-1] == request.headers.get("host", "")


def _same(given: str, expected: str) -> bool:
    """Constant-time equality of what a client sent (any text: compare_digest refuses non-ASCII str) and ours."""
    return hmac.compare_digest(given.encode(errors="replace"), expected.encode())


def _mac(token: bytes, label: str, nonce: str) -> str:
    return hmac.new(token, f"{label}:{nonce}".encode(), hashlib.sha256).hexdigest()
