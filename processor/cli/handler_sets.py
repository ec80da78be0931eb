"""The handler sets the live workers publish with their heartbeats, compared: workers that loaded the same handlers
(names, patterns, options, origin, version, code) on the same Hookyard form one set, and more than one set means
the workers disagree — a rolling deploy in progress, or one left half done."""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from processor.stats import WorkerInfo, read_workers

__all__ = ["HandlerSet", "LiveHandlers", "compare", "read_live_handlers"]


@dataclass(frozen=True, slots=True)
class HandlerSet:
    """Workers that loaded exactly the same handlers, labelled A, B, … from the most common set down."""

    label: str
    workers: tuple[str, ...]
    hookyard: str | None
    handlers: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class LiveHandlers:
    sets: tuple[HandlerSet, ...] = ()
    #: Live workers that publish no handler set (a Hookyard from before they did): what they run is unknown.
    silent: tuple[str, ...] = ()

    @property
    def workers(self) -> int:
        return sum(len(s.workers) for s in self.sets) + len(self.silent)

    @property
    def agree(self) -> bool:
        return len(self.sets) + (1 if self.silent else 0) <= 1

    def variants(self) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
        """Every distinct handler registration, by name, with the labels of the sets that loaded it."""
        found: dict[bytes, tuple[dict[str, Any], list[str]]] = {}
        for handler_set in self.sets:
            for handler in handler_set.handlers:
                found.setdefault(_identity(handler), (handler, []))[1].append(handler_set.label)
        ordered = sorted(found.values(), key=lambda entry: (str(entry[0]["name"]), entry[1]))
        return [(handler, tuple(labels)) for handler, labels in ordered]

    def workers_of(self, labels: tuple[str, ...]) -> list[str]:
        return [worker for s in self.sets if s.label in labels for worker in s.workers]


def read_live_handlers(client: redis.Redis, now_ms: int) -> LiveHandlers:
    """The handler sets of the workers alive now (none alive: no sets)."""
    return compare(read_workers(client, now_ms))


def compare(workers: Mapping[str, WorkerInfo]) -> LiveHandlers:
    groups: dict[bytes, list[str]] = {}
    published: dict[bytes, WorkerInfo] = {}
    silent = []
    for worker, info in sorted(workers.items()):
        if info.handlers is None:
            silent.append(worker)
            continue
        key = orjson.dumps([info.hookyard, [_identity(h).decode() for h in info.handlers]])
        groups.setdefault(key, []).append(worker)
        published.setdefault(key, info)
    biggest_first = sorted(groups, key=lambda key: (-len(groups[key]), groups[key][0]))
    sets = tuple(
        HandlerSet(_label(i), tuple(groups[key]), published[key].hookyard, published[key].handlers or ())
        for i, key in enumerate(biggest_first)
    )
    return LiveHandlers(sets, tuple(silent))


def _identity(handler: dict[str, Any]) -> bytes:
    return orjson.dumps(handler, option=orjson.OPT_SORT_KEYS)


def _label(index: int) -> str:
    letters = string.ascii_uppercase
    return letters[index] if index < len(letters) else f"S{index + 1}"
