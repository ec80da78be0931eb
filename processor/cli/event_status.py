"""Where one event stands with each handler it was routed to: pending (or running), dead, skipped, or done.

The routes come from the event's archive entry (recorded at its first arrival, `processor.routing`), so any
process finds the right pairs without loading the handlers. For an entry archived before routes were recorded,
a handler this process can load has its key recomputed as ingest did; dead and skipped letters are still found
for the others (their records name the handler); anything else is "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import redis

from processor import deadletters
from processor.decode import event_from_queued
from processor.event import Event
from processor.handlers import Registry
from processor.records import ArchivedEvent, DeadLetter, PairState
from processor.routing import Target, ordering_key
from shared import keys
from shared.errors import EnvelopeError, WireFormatError

__all__ = ["HandlerStatus", "handler_statuses"]

StatusName = Literal["pending", "running", "dead", "skipped", "done", "unknown"]


@dataclass(slots=True)
class HandlerStatus:
    """One target handler's view of the event."""

    handler: str
    status: StatusName
    ordering_key: str | None = None
    pair: str | None = None
    shard: int | None = None
    ordered: bool = True
    state: PairState | None = None
    leased_until_ms: int | None = None
    due_at_ms: int | None = None
    letter_at_ms: int | None = None
    record: DeadLetter | None = None

    def target(self) -> Target | None:
        """The pair this handler's copy of the event lives in; None when it is not known here."""
        if self.ordering_key is None or self.pair is None or self.shard is None:
            return None
        return Target(self.handler, self.ordering_key, self.ordered, self.shard, self.pair)


def handler_statuses(
    client: redis.Redis, registry: Registry, archived: ArchivedEvent, now_ms: int, *, window_ms: int
) -> list[HandlerStatus]:
    """The status of the event with every handler it was routed to, in routing order.

    `window_ms` is the hold-back window (HOOKYARD_REORDER_WINDOW) the workers apply, for when a pending event
    becomes runnable.
    """
    found = [_located(t) for t in archived.routes] if archived.routes is not None else _recomputed(registry, archived)
    _read_pairs(client, found, archived.event_id, now_ms)
    for status in found:
        if status.state is not None:
            status.due_at_ms = status.state.runnable_at(window_ms if status.ordered else 0)
    if any(s.status == "unknown" for s in found):
        _read_letters(client, found, archived.source, archived.event_id)
    return found


def _located(target: Target) -> HandlerStatus:
    return HandlerStatus(
        target.handler, "done", target.ordering_key, target.pair_id, target.shard, ordered=target.ordered
    )


def _recomputed(registry: Registry, archived: ArchivedEvent) -> list[HandlerStatus]:
    event = _event(archived)
    found: list[HandlerStatus] = []
    for name in archived.handlers:
        spec = registry.get(name)
        if spec is None or event is None:
            found.append(HandlerStatus(name, "unknown"))
        else:
            found.append(_located(Target.of(name, archived.source, ordering_key(spec, event), spec.ordered)))
    return found


def _event(archived: ArchivedEvent) -> Event | None:
    try:
        event, _ = event_from_queued(archived.queued())
    except EnvelopeError:
        return None
    return event


def _read_pairs(client: redis.Redis, found: list[HandlerStatus], event_id: str, now_ms: int) -> None:
    located = [(s, s.shard, s.pair) for s in found if s.shard is not None and s.pair is not None]
    pipe = client.pipeline(transaction=False)
    for _, shard, pair_id in located:
        pk = keys.pair_keys(shard, pair_id)
        dk = keys.DeadLetterKeys(shard)
        member = f"{pair_id}:{event_id}"
        pipe.zscore(pk.queue, event_id)
        pipe.hget(pk.state, event_id)
        pipe.zrange(pk.queue, 0, 0)
        pipe.hget(pk.pair, "lease_until")
        pipe.zscore(dk.dead, member)
        pipe.zscore(dk.skipped, member)
        pipe.hget(dk.records, member)
    replies = pipe.execute() if located else []
    for i, (status, _, _) in enumerate(located):
        queued, state, head, lease_until, dead_at, skipped_at, record = replies[i * 7 : (i + 1) * 7]
        if queued is not None:
            status.state = PairState.parse(state)
            leased = int(lease_until or 0)
            running = bool(head) and head[0].decode() == event_id and leased > now_ms
            status.status = "running" if running else "pending"
            status.leased_until_ms = leased if running else None
        elif dead_at is not None or skipped_at is not None:
            status.status = "dead" if dead_at is not None else "skipped"
            status.letter_at_ms = int(dead_at if dead_at is not None else skipped_at)
            status.record = _decode(record)


def _read_letters(client: redis.Redis, statuses: list[HandlerStatus], source: str, event_id: str) -> None:
    # A look through every dead and skipped letter (few, unless something is badly wrong): the only way to find
    # those of a handler whose ordering key cannot be computed here.
    by_handler = {s.handler: s for s in statuses if s.status == "unknown"}
    for kind in ("dead", "skipped"):
        for letter in deadletters.list_letters(client, kind, event_ids={event_id}):
            status = by_handler.get(letter.handler)
            if status is None or letter.record.source != source:
                continue
            status.status = kind
            status.letter_at_ms = letter.at_ms
            status.record = letter.record
            status.ordering_key = letter.record.ordering_key
            status.pair = letter.record.pair
            status.shard = letter.shard


def _decode(raw: bytes | None) -> DeadLetter | None:
    if not raw:
        return None
    try:
        return DeadLetter.decode(raw)
    except WireFormatError:
        return None
