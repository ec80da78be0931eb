"""The archive of received events: their exact bytes and metadata, kept `HOOKYARD_RETENTION`, and longer for an
event a dead letter or skipped record still needs."""

from __future__ import annotations

import redis

from processor.records import ArchivedEvent
from processor.store.calls import Scripts, call
from shared import keys

__all__ = ["Archive"]


class Archive:
    def __init__(self, client: redis.Redis, scripts: Scripts) -> None:
        self.client = client
        self.scripts = scripts

    def get(self, source: str, event_id: str) -> ArchivedEvent | None:
        """The archived event, or None once retention dropped it."""
        found = call(self.client.hgetall, keys.event_keys(source, event_id).archive)
        return ArchivedEvent.decode(event_id, found) if found else None

    def keep(self, source: str, event_id: str, ttl_ms: int) -> None:
        """Keep an event's archived bytes at least `ttl_ms` longer (a dead letter or skipped event needs them)."""
        self.scripts.run("keep_archive", [keys.event_keys(source, event_id).archive], [ttl_ms])
