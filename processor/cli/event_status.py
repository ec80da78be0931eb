"""Where one event stands with each handler it was routed to: pending (or running), dead, skipped, or done.

The archive names the event's target handlers; the state lives under each (handler, source, ordering key) pair,
so the key is recomputed from the event as ingest computed it — which needs the handler's module loaded. For a
handler this process cannot load, dead and skipped letters are still found (their records name the handler);
anything else is "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import redis

from processor import deadletters
from processor.decode import event_from_queued
from processor.event import Event
from processor.handlers import HandlerSpec, Registry
from shared import keys
from shared.errors import EnvelopeError
from shared.wire import QueuedEvent

__all__ = ["HandlerStatus", "PairState", "handler_statuses", "parse_state", "runnable_at"]

StatusName = Literal["pending", "running", "dead", "skipped", "done", "unknown"]


@dataclass(frozen=True, slots=True)
class PairState:
    """An event's delivery state in one pair (`{hy:N}:st:<pid>`): `received|not_before|attempts|first|last|replay`."""

    received_ms: int
    not_before_ms: int
    attempts: int
    first_failure_ms: int
    last_failure_ms: int
    replay: bool


def parse_state(raw: bytes | str | None) -> PairState | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    try:
        received, not_before, attempts, first, last, replay = (int(part) for part in text.split("|"))
    except ValueError:
        return None
    return PairState(received, not_before, attempts, first, last, replay == 1)


@dataclass(slots=True)
class HandlerStatus:
    """One target handler's view of the event."""

    handler: str
    status: StatusName
    ordering_key: str | None = None
    pair: str | None = None
    shard: int | None = None
    state: PairState | None = None
    leased_until_ms: int | None = None
    due_at_ms: int | None = None
    letter_at_ms: int | None = None
    record: dict[str, Any] = field(default_factory=dict)


def handler_statuses(
    client: redis.Redis,
    registry: Registry,
    archive: dict[str, bytes],
    event_id: str,
    now_ms: int,
    *,
    window_ms: int,
) -> list[HandlerStatus]:
    """The status of `event_id` with every handler its archive entry names, in that order.

    `window_ms` is the hold-back window (HOOKYARD_REORDER_WINDOW) the workers apply, for when a pending event
    becomes runnable.
    """
    source = archive["source"].decode()
    targets = [name for name in archive.get("targets", b"").decode().split(",") if name]
    event = _event(archive)
    found: list[HandlerStatus] = []
    for name in targets:
        spec = registry.get(name)
        if spec is None or event is None:
            found.append(HandlerStatus(name, "unknown"))
        else:
            key = _ordering_key(spec, event)
            shard = keys.pair_shard(source, key)
            found.append(HandlerStatus(name, "done", key, keys.pair_id(name, source, key), shard))
    _read_pairs(client, found, event_id, now_ms)
    for status in found:
        spec = registry.get(status.handler)
        if status.state is not None and spec is not None:
            status.due_at_ms = runnable_at(status.state, window_ms if spec.ordered else 0)
    if any(s.status == "unknown" for s in found):
        _read_letters(client, found, source, event_id)
    return found


def runnable_at(state: PairState, window_ms: int) -> int:
    """When a pending event may run, as the claim script decides it (`runnable_at` in scripts/prelude.lua):
    after the hold-back window (none for a replay) and after its retry backoff."""
    at = 0 if state.replay else state.received_ms + window_ms
    return max(at, state.not_before_ms)


def _event(archive: dict[str, bytes]) -> Event | None:
    # Rebuilt from the archive exactly as ingest built it from the queued message, so the keys agree.
    queued = QueuedEvent(
        source=archive["source"].decode(),
        event_id="",
        event_type=archive.get("type", b"").decode(),
        signed_at_ms=int(archive.get("signed", b"0")),
        received_at_ms=int(archive.get("received", b"0")),
        raw=archive["raw"],
    )
    try:
        event, _ = event_from_queued(queued)
    except EnvelopeError:
        return None
    return event


def _ordering_key(spec: HandlerSpec, event: Event) -> str:
    # Exactly as ingest does it, so the pair found is the one the event was queued in.
    try:
        key = spec.ordering_key(event)
    except Exception:  # noqa: BLE001 - a user key function that fails made ingest fall back the same way
        return f"event:{event.id}"
    return key if isinstance(key, str) else str(key)


def _read_pairs(client: redis.Redis, found: list[HandlerStatus], event_id: str, now_ms: int) -> None:
    located = [(s, s.shard, s.pair) for s in found if s.shard is not None and s.pair is not None]
    pipe = client.pipeline(transaction=False)
    for _, shard, pid in located:
        pk = keys.pair_keys(shard, pid)
        dk = keys.DeadLetterKeys(shard)
        member = f"{pid}:{event_id}"
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
            status.state = parse_state(state)
            leased = int(lease_until or 0)
            running = bool(head) and head[0].decode() == event_id and leased > now_ms
            status.status = "running" if running else "pending"
            status.leased_until_ms = leased if running else None
        elif dead_at is not None or skipped_at is not None:
            status.status = "dead" if dead_at is not None else "skipped"
            status.letter_at_ms = int(dead_at if dead_at is not None else skipped_at)
            status.record = _record(record)


def _read_letters(client: redis.Redis, statuses: list[HandlerStatus], source: str, event_id: str) -> None:
    # A look through every dead and skipped letter (few, unless something is badly wrong): the only way to find
    # those of a handler whose ordering key cannot be computed here.
    by_handler = {s.handler: s for s in statuses if s.status == "unknown"}
    for kind in ("dead", "skipped"):
        for letter in deadletters.list_letters(client, kind, event_ids={event_id}):
            status = by_handler.get(letter.handler)
            if status is None or letter.record.get("source") != source:
                continue
            status.status = kind
            status.letter_at_ms = letter.at_ms
            status.record = letter.record
            status.ordering_key = str(letter.record.get("ordering_key", status.ordering_key))
            status.pair = str(letter.record.get("pair", status.pair))
            status.shard = letter.shard


def _record(raw: bytes | None) -> dict[str, Any]:
    return orjson.loads(raw) if raw else {}
