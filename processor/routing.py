"""Which (handler, ordering key) pairs an event goes to — decided once, at its first arrival, and stored.

Ingest routes a new event with the handlers loaded now and records the routes beside the event's dedupe marker
and in its archive. A redelivery of the same event id (whatever its body) re-uses the recorded routes, so a
handler never runs an event twice because its body changed or an `order_by` changed in a deploy in between, and
every inspection (`hookyard events show`, the console) reads the same routes instead of computing them again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from processor.event import Event
from processor.handlers import HandlerSpec
from shared import keys
from shared.logging import get_logger

__all__ = ["Target", "decode_routes", "encode_routes", "ordering_key", "route"]

log = get_logger("hookyard.routing")


@dataclass(frozen=True, slots=True)
class Target:
    """One (handler, ordering key) an event goes to, and where that pair lives."""

    handler: str
    ordering_key: str
    ordered: bool
    shard: int
    pair_id: str

    @classmethod
    def of(cls, handler: str, source: str, ordering_key: str, ordered: bool) -> Target:
        return cls(
            handler,
            ordering_key,
            ordered,
            keys.pair_shard(source, ordering_key),
            keys.pair_id(handler, source, ordering_key),
        )


def ordering_key(spec: HandlerSpec, event: Event) -> str:
    """The handler's ordering key for the event; a key function that fails puts the event on its own key."""
    try:
        key = spec.ordering_key(event)
    except Exception as exc:  # noqa: BLE001 - a user key function must not stop ingestion
        log.error("ordering_key.failed", handler=spec.name, event_id=event.id, error=repr(exc)[:200])
        return f"event:{event.id}"
    return key if isinstance(key, str) else str(key)


def route(specs: Sequence[HandlerSpec], event: Event) -> tuple[Target, ...]:
    """The targets of a newly arrived event among the handlers that match its type."""
    return tuple(Target.of(spec.name, event.source, ordering_key(spec, event), spec.ordered) for spec in specs)


def encode_routes(targets: Sequence[Target]) -> bytes:
    return orjson.dumps([[t.handler, t.ordering_key, int(t.ordered)] for t in targets])


def decode_routes(source: str, raw: bytes | str) -> tuple[Target, ...]:
    """Targets recorded by `encode_routes`; raises ValueError when the bytes are not such a record."""
    try:
        rows = orjson.loads(raw)
        return tuple(Target.of(str(h), source, str(k), bool(o)) for h, k, o in rows)
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"not a routes record: {exc}") from None
