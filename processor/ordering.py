"""Ordering keys: which events of a handler must be delivered one at a time, in issued order.

A handler's `order_by` picks the key: `"resource"` (default), `"directory"`, `"organization"`, `"none"` or a
callable `Event -> str`. Keys are scoped by source by the store, not here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from processor.event import Event

__all__ = ["NAMED_ORDERINGS", "OrderBy", "OrderingKeyFn", "key_function"]

OrderingKeyFn = Callable[[Event], str]
OrderBy = str | OrderingKeyFn

NO_ORDERING = "none"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _nested_id(data: dict[str, Any], field: str) -> str | None:
    inner = data.get(field)
    return _text(inner.get("id")) if isinstance(inner, dict) else None


def by_resource(event: Event) -> str:
    data = event.data
    if event.type in ("dsync.group.user_added", "dsync.group.user_removed"):
        group, user = _nested_id(data, "group"), _nested_id(data, "user")
        if group and user:
            return f"membership:{group}:{user}"
    elif event.type.startswith("connection.saml_certificate_"):
        connection = _nested_id(data, "connection")
        if connection:
            return connection
    return _text(data.get("id")) or f"event:{event.id}"


def by_directory(event: Event) -> str:
    data = event.data
    if event.type in ("dsync.activated", "dsync.deleted"):
        return _text(data.get("id")) or f"event:{event.id}"
    return _text(data.get("directory_id")) or f"event:{event.id}"


def by_organization(event: Event) -> str:
    data = event.data
    if event.type.startswith("organization."):
        return _text(data.get("id")) or f"event:{event.id}"
    found = _text(data.get("organization_id")) or _text(
        data.get("connection", {}).get("organization_id") if isinstance(data.get("connection"), dict) else None
    )
    return found or f"event:{event.id}"


def by_event(event: Event) -> str:
    return f"event:{event.id}"


NAMED_ORDERINGS: dict[str, OrderingKeyFn] = {
    "resource": by_resource,
    "directory": by_directory,
    "organization": by_organization,
    NO_ORDERING: by_event,
}


def key_function(order_by: OrderBy) -> OrderingKeyFn:
    """The key function for an `order_by` option; raises ValueError for an unknown name."""
    if callable(order_by):
        return order_by
    try:
        return NAMED_ORDERINGS[order_by]
    except KeyError:
        raise ValueError(
            f"order_by must be one of {', '.join(sorted(NAMED_ORDERINGS))} or a callable, got {order_by!r}"
        ) from None
