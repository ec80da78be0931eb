"""The web console's settings (`HOOKYARD_CONSOLE_*`, docs/configuration.md), read with every other setting by
`Settings.from_env` (shared/settings.py) and kept together as `Settings.console`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

from shared.errors import ConfigError

__all__ = ["ConsoleSettings", "SettingReader", "read_console"]

#: Dotted paths into the envelope (`data.emails`, `data.*.email`), checked at start so a typo stops the console.
_REDACT_PATH = re.compile(r"^[A-Za-z0-9_\-*]+(\.[A-Za-z0-9_\-*]+)*$")
_MIN_TOKEN = 16


class SettingReader(Protocol):
    """What reading settings offers (shared/settings.py's reader): cast values, remembered as known names."""

    def text(self, name: str, default: str) -> str: ...
    def integer(self, name: str, default: int, *, minimum: int = 0, maximum: int = 2**31) -> int: ...
    def duration(self, name: str, default: float, *, minimum: float = 0.0) -> float: ...
    def csv(self, name: str) -> tuple[str, ...]: ...


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    host: str = "127.0.0.1"
    #: Set: the worker fleet runs the console on this port beside the workers.
    port: int | None = None
    #: Actions (replay, purge, resend) need it; None: the console is read-only.
    token: bytes | None = field(default=None, repr=False)
    redact: tuple[str, ...] = ()
    sample_interval_s: float = 60.0
    #: Host names (besides loopback and `host`) the console answers to; any other Host header gets 400.
    allowed_hosts: tuple[str, ...] = ()


def read_console(read: SettingReader) -> ConsoleSettings:
    token = read.text("HOOKYARD_CONSOLE_TOKEN", "")
    if token and len(token) < _MIN_TOKEN:
        raise ConfigError("HOOKYARD_CONSOLE_TOKEN", f"must be at least {_MIN_TOKEN} characters")
    paths = read.csv("HOOKYARD_CONSOLE_REDACT")
    for path in paths:
        if not _REDACT_PATH.match(path):
            raise ConfigError("HOOKYARD_CONSOLE_REDACT", f"{path!r} is not a dotted path such as data.emails")
    hosts = read.csv("HOOKYARD_CONSOLE_ALLOWED_HOSTS")
    for name in hosts:
        if "*" in name[1:] or (name.startswith("*") and name != "*" and not name.startswith("*.")):
            raise ConfigError("HOOKYARD_CONSOLE_ALLOWED_HOSTS", f"{name!r}: a wildcard is only `*.example.com`")
    return ConsoleSettings(
        host=read.text("HOOKYARD_CONSOLE_HOST", "127.0.0.1"),
        port=read.integer("HOOKYARD_CONSOLE_PORT", 0, maximum=65535) or None,
        token=token.encode() or None,
        redact=paths,
        sample_interval_s=read.duration("HOOKYARD_CONSOLE_SAMPLE_INTERVAL", 60.0, minimum=1.0),
        allowed_hosts=hosts,
    )
