"""Where the CLI finds things: the receiver's webhook URL, the workers' metrics URL, and a Redis URL fit to print."""

from __future__ import annotations

import re

__all__ = ["client_host", "metrics_url", "webhook_url", "without_password"]

_USERINFO_PASSWORD = re.compile(r"//([^:/@]*):[^@/]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*")


def client_host(host: str) -> str:
    """The address a client uses to reach a server bound to `host` (a wildcard bind is reached on loopback)."""
    if host in ("0.0.0.0", ""):  # noqa: S104 - recognising a bind address, not binding
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def webhook_url(host: str, port: int, source: str) -> str:
    return f"http://{client_host(host)}:{port}/webhooks/{source}"


def metrics_url(host: str, port: int) -> str:
    return f"http://{client_host(host)}:{port}/metrics"


def without_password(url: str) -> str:
    """`url` with any password masked, so it can go into output and error messages."""
    return _QUERY_PASSWORD.sub(r"\1****", _USERINFO_PASSWORD.sub(r"//\1:****@", url))
