"""Argument types shared by the `hookyard` verbs, and the two shapes every verb module has in common.

A verb module exposes `add_parser(verbs)`, which registers its parser with `set_defaults(run=...)`; `run` gets
the parsed arguments and the environment `main` read once, and returns the exit code.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeAlias

from shared.errors import ConfigError
from shared.settings import parse_duration

__all__ = [
    "Run",
    "TimeBound",
    "Verbs",
    "duration",
    "port",
    "positive_int",
    "probability",
    "source_name",
    "time_bound",
]

Run: TypeAlias = Callable[[argparse.Namespace, dict[str, str]], int]
Verbs: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_DURATION = re.compile(r"^\s*\d+(?:\.\d+)?\s*(ms|s|m|h|d)?\s*$")


def positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port between 1 and 65535, got {value}")
    return value


def source_name(raw: str) -> str:
    if not _SOURCE_NAME.match(raw):
        raise argparse.ArgumentTypeError(f"must match {_SOURCE_NAME.pattern}")
    return raw


def probability(raw: str) -> float:
    value = float(raw)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


#: The longest duration a verb takes: beyond it the milliseconds no longer fit what Redis and datetime hold.
_LONGEST_S = 10_000 * 365 * 86_400.0


def duration(raw: str) -> float:
    """Seconds, in the syntax settings use: `180`, `500ms`, `5m`, `2h`, `7d`."""
    try:
        seconds = parse_duration("", raw)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(exc.problem) from None
    if not seconds <= _LONGEST_S:  # also catches inf and nan: "9" * 400 overflows a float
        raise argparse.ArgumentTypeError(f"longer than 10,000 years: {raw[:40]!r}")
    return seconds


@dataclass(frozen=True, slots=True)
class TimeBound:
    """A `--since`/`--until` value: an absolute time, or a duration ago resolved when the verb runs."""

    at_ms: int | None = None
    ago_s: float | None = None

    def resolve(self, now_ms: int) -> int:
        if self.at_ms is not None:
            return self.at_ms
        return now_ms - int((self.ago_s or 0.0) * 1000)


def time_bound(raw: str) -> TimeBound:
    """`2026-11-27T09:00:00Z` (naive means UTC, a date alone means its midnight) or `2h`, `7d`, `90m` ago."""
    if _DURATION.match(raw):
        return TimeBound(ago_s=duration(raw))
    try:
        when = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 time (2026-11-27T09:00:00Z) or a duration ago (2h, 7d); got {raw!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return TimeBound(at_ms=int(when.timestamp() * 1000))
