"""How the CLI writes times (UTC, ISO-8601, millisecond precision) and ages ("3m 04s") for people."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["age", "iso", "span"]


def iso(ms: int | None) -> str | None:
    """`2026-11-27T14:03:09.120Z`, or None for a missing time (0 or None)."""
    if not ms:
        return None
    when = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def age(seconds: float | None) -> str | None:
    """A short duration for people: `0.4s`, `12s`, `3m 04s`, `2h 05m`, `3d 04h`; negative means in the future."""
    if seconds is None:
        return None
    if seconds < 0:
        return "in " + (age(-seconds) or "")
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600:02d}h"


def span(seconds: float) -> str:
    """A configured duration as it would be written in a setting: `500ms`, `1s`, `10m`, `2h`, `7d`."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"
