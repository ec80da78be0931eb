"""One archived event for the people looking after Hookyard: find it by id, and describe it — its envelope, its
times, and where it stands with each handler it was routed to. `hookyard events` prints these documents; the
console renders them."""

from __future__ import annotations

from typing import Any

import orjson
import redis

from processor.cli.context import load_registry
from processor.cli.event_index import StatusLookup
from processor.cli.event_status import HandlerStatus, handler_statuses
from processor.cli.render import iso
from processor.handlers import Registry
from processor.records import ArchivedEvent, StoreTimings
from shared import keys
from shared.errors import HookyardError, RegistrationError
from shared.settings import Settings

__all__ = ["event_document", "find_event", "registry_or_none", "status_document", "status_lookup"]


def status_lookup(
    client: redis.Redis, settings: Settings, now_ms: int, registry: Registry | None = None
) -> StatusLookup:
    """Each event's status with every handler it was routed to (for a `--status` filter); the handlers are
    loaded here unless `registry` is given."""
    if registry is None:
        registry = registry_or_none(settings) or Registry()
    window_ms = StoreTimings.from_settings(settings).window_ms

    def status_of(archived: ArchivedEvent) -> dict[str, str]:
        found = handler_statuses(client, registry, archived, now_ms, window_ms=window_ms)
        return {status.handler: status.status for status in found}

    return status_of


def find_event(client: redis.Redis, sources: list[str], event_id: str) -> ArchivedEvent:
    """The archived event `event_id` of one of `sources`; `HookyardError` when none or several hold it."""
    pipe = client.pipeline(transaction=False)
    for source in sources:
        pipe.hgetall(keys.event_keys(source, event_id).archive)
    hits = [ArchivedEvent.decode(event_id, entry) for entry in pipe.execute() if entry]
    if not hits:
        raise HookyardError(
            f"no event {event_id!r} in the archive of {', '.join(sources)}; it may be past HOOKYARD_RETENTION"
        )
    if len(hits) > 1:
        found_in = ", ".join(hit.source for hit in hits)
        raise HookyardError(f"event {event_id!r} was received from several sources ({found_in}): pass --source")
    return hits[0]


def registry_or_none(settings: Settings) -> Registry | None:
    """The handlers `settings` name, or None when one of their modules fails to import here."""
    # A handler module that fails to import here must not hide the event: its handlers show as "unknown".
    try:
        return load_registry(settings)
    except RegistrationError:
        return None


def event_document(archived: ArchivedEvent, statuses: list[HandlerStatus], now_ms: int) -> dict[str, Any]:
    """The event as plain data: envelope (parsed), times, size, and `status_document` of every handler."""
    raw = archived.raw
    try:
        envelope: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        envelope = raw.decode(errors="replace")
    received = archived.received_at_ms or None
    return {
        "event_id": archived.event_id,
        "source": archived.source,
        "type": archived.event_type,
        "issued_at": iso(archived.issued_at_ms or None),
        "signed_at": iso(archived.signed_at_ms or None),
        "received_at": iso(received),
        "age_s": (now_ms - received) / 1000 if received else None,
        "bytes": len(raw),
        "handlers": [status_document(status) for status in statuses],
        "envelope": envelope,
    }


def status_document(status: HandlerStatus) -> dict[str, Any]:
    """One handler's view of the event as plain data: status, ordering key, pair, attempts, failures, error."""
    state = status.state
    record = status.record
    return {
        "handler": status.handler,
        "status": status.status,
        "ordering_key": status.ordering_key,
        "pair": status.pair,
        "shard": status.shard,
        "attempts": state.attempts if state else (record.attempts if record else None),
        "not_before": iso(state.not_before_ms) if state else None,
        "runnable_at": iso(status.due_at_ms),
        "first_failure": iso(state.first_failure_ms if state else (record.first_failure_ms if record else None)),
        "last_failure": iso(state.last_failure_ms if state else (record.last_failure_ms if record else None)),
        "replay": state.replay if state else None,
        "leased_until": iso(status.leased_until_ms),
        "set_aside_at": iso(status.letter_at_ms),
        "error": ({"type": record.error_type, "message": record.error_message} if record else None),
    }
