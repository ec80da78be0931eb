"""Hiding chosen fields of an event body in the console (`HOOKYARD_CONSOLE_REDACT`): personal data an operator
does not need to see to answer "was it delivered, what did the handler do".

A path is dot-separated keys from the envelope's root (`data.emails`, `data.first_name`). `*` matches every key of
an object or every element of a list; a key applied to a list applies to each of its elements, so
`data.emails.value` hides the value of every email. A path that matches nothing hides nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["REDACTED", "redact"]

REDACTED = "[redacted]"


def redact(document: Any, paths: Sequence[str]) -> Any:
    """A copy of `document` with the value at every path replaced by `REDACTED` (the original is not changed)."""
    for path in paths:
        document = _hide(document, path.split("."))
    return document


def _hide(node: Any, segments: list[str]) -> Any:
    if not segments:
        return REDACTED
    head, rest = segments[0], segments[1:]
    if isinstance(node, list):
        if head == "*":
            return [_hide(item, rest) for item in node]
        return [_hide(item, segments) for item in node]
    if not isinstance(node, dict):
        return node
    if head == "*":
        return {key: _hide(value, rest) for key, value in node.items()}
    if head not in node:
        return node
    return {**node, head: _hide(node[head], rest)}
