"""`hookyard handlers`: which handlers a worker would run here, with their patterns, options and origin."""

from __future__ import annotations

import argparse
from typing import Any

from processor.cli.arguments import Verbs
from processor.cli.context import load_registry, settings_without_redis
from processor.cli.render import print_json, render_table, say, span
from processor.handlers import HandlerSpec

__all__ = ["add_parser", "describe"]


def add_parser(verbs: Verbs) -> None:
    parser = verbs.add_parser(
        "handlers",
        help="list registered handlers, their options and origin",
        description=(
            "Import the handler modules as the worker does (the built-in event logger when HOOKYARD_LOG_EVENTS "
            "is on, packaged plugins of the hookyard.handlers entry point group, then HOOKYARD_HANDLERS) and "
            "list every handler with its event patterns, options and origin. Exits 1 if a module fails to import."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    registry = load_registry(settings_without_redis(environ))
    specs = sorted(registry, key=lambda spec: spec.name)
    if args.json:
        print_json({"handlers": [describe(spec) for spec in specs]})
        return 0
    if not specs:
        say(
            "no handlers registered: set HOOKYARD_HANDLERS, install a plugin (entry point group hookyard.handlers) "
            "or turn on HOOKYARD_LOG_EVENTS"
        )
        return 0
    rows = [
        (
            spec.name,
            " ".join(spec.patterns),
            _order_by(spec),
            spec.late,
            spec.max_attempts,
            _backoff(spec),
            spec.origin or "imported before discovery",
        )
        for spec in specs
    ]
    say(render_table(("HANDLER", "PATTERNS", "ORDER BY", "LATE", "ATTEMPTS", "BACKOFF", "ORIGIN"), rows, right=(4,)))
    return 0


def describe(spec: HandlerSpec) -> dict[str, Any]:
    """A handler's registration as plain data (for `--json`)."""
    return {
        "name": spec.name,
        "patterns": list(spec.patterns),
        "order_by": _order_by(spec),
        "ordered": spec.ordered,
        "late": spec.late,
        "max_attempts": spec.max_attempts,
        "min_backoff_s": spec.min_backoff_s,
        "max_backoff_s": spec.max_backoff_s,
        "async": spec.is_async,
        "origin": spec.origin or None,
    }


def _backoff(spec: HandlerSpec) -> str:
    low, high = span(spec.min_backoff_s), span(spec.max_backoff_s)
    return low if low == high else f"{low}..{high}"


def _order_by(spec: HandlerSpec) -> str:
    if isinstance(spec.order_by, str):
        return spec.order_by
    name = getattr(spec.order_by, "__qualname__", None) or repr(spec.order_by)
    return f"callable {getattr(spec.order_by, '__module__', '?')}.{name}"
