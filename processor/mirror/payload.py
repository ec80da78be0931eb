"""Reading a WorkOS event's `data` leniently: optional fields may be missing or null, times come in more than
one format; only what the mirror cannot do without (an object's id) makes an event malformed. A U+0000 in a string
is valid JSON that PostgreSQL cannot store in text, so `without_nul` drops it from every string before any is read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from processor.handlers import Unprocessable

__all__ = [
    "MalformedEvent",
    "json_value",
    "object_at",
    "optional_text",
    "required_text",
    "without_nul",
    "workos_time",
]


class MalformedEvent(Unprocessable):
    """The event lacks what the mirror needs (an id, an object): retrying cannot help, so it is dead-lettered."""


def without_nul(value: Any) -> Any:
    """`value` with every U+0000 removed from its strings (keys too), at any depth: both backends store it alike."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value


def required_text(data: dict[str, Any], field: str, event_type: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"{event_type}: data.{field} is missing or not a string")
    return value


def optional_text(data: dict[str, Any], field: str) -> str | None:
    value = data.get(field)
    return value if isinstance(value, str) and value else None


def object_at(data: dict[str, Any], field: str, event_type: str) -> dict[str, Any]:
    value = data.get(field)
    if not isinstance(value, dict):
        raise MalformedEvent(f"{event_type}: data.{field} is missing or not an object")
    return value


def json_value(data: dict[str, Any], field: str) -> Any:
    value = data.get(field)
    return value if isinstance(value, dict | list) else None


def workos_time(value: Any) -> datetime | None:
    """`2021-06-25T19:07:33.155Z`, or the older `2023-04-28 20:05:31.093`; None for anything else."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
