"""Dead letters and skipped late events: list, find and replay them (for the CLI, the test harness and ops)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, cast

import redis

from processor.cli.render import iso
from processor.records import DeadLetter
from processor.store import Store
from shared import keys
from shared.errors import ArchiveExpired, WireFormatError

__all__ = [
    "Kind",
    "Letter",
    "ReplayResult",
    "count_letters",
    "letter_document",
    "list_letters",
    "purge",
    "replay",
    "replay_each",
]

Kind = Literal["dead", "skipped"]
#: What replaying one letter did: back in its queue, already gone (replayed or purged by someone else since it was
#: listed), or past retention (its event's bytes are gone).
ReplayResult = Literal["replayed", "gone", "expired"]


@dataclass(frozen=True, slots=True)
class Letter:
    """One dead (or skipped) event of one handler, with the record written when it was set aside."""

    kind: Kind
    shard: int
    member: str
    at_ms: int
    record: DeadLetter

    @property
    def event_id(self) -> str:
        return self.record.event_id

    @property
    def handler(self) -> str:
        return self.record.handler


def _zset(shard: int, kind: Kind) -> str:
    dk = keys.DeadLetterKeys(shard)
    return dk.dead if kind == "dead" else dk.skipped


def list_letters(
    client: redis.Redis,
    kind: Kind = "dead",
    *,
    handler: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    event_ids: set[str] | None = None,
    newest: int | None = None,
) -> list[Letter]:
    """Letters of every shard, oldest first, filtered; with `newest`, only the newest that many of the range (a
    page over a large dead-letter set reads that many per shard at most, never them all)."""
    low = "-inf" if since_ms is None else since_ms
    high = "+inf" if until_ms is None else until_ms
    pipe = client.pipeline(transaction=False)
    for shard in range(keys.SHARDS):
        if newest is None:
            pipe.zrangebyscore(_zset(shard, kind), low, high, withscores=True)
        else:
            pipe.zrevrangebyscore(_zset(shard, kind), high, low, start=0, num=newest, withscores=True)
    rows = cast(list[list[tuple[bytes, float]]], pipe.execute())
    if newest is not None:
        kept = sorted(((score, shard, m) for shard, ms in enumerate(rows) for m, score in ms), reverse=True)[:newest]
        rows = [[(m, score) for score, s, m in kept if s == shard] for shard in range(keys.SHARDS)]
    wanted: list[tuple[int, str, int]] = []
    for shard, members in enumerate(rows):
        for member, score in members:
            text = member.decode()
            if event_ids is not None and text.split(":", 1)[1] not in event_ids:
                continue
            wanted.append((shard, text, int(score)))
    pipe = client.pipeline(transaction=False)
    for shard, name, _ in wanted:
        pipe.hget(keys.DeadLetterKeys(shard).records, name)
    records = cast(list[bytes | None], pipe.execute())
    letters = []
    for (shard, name, at_ms), raw in zip(wanted, records, strict=True):
        if raw is None:
            continue
        try:
            record = DeadLetter.decode(raw)
        except WireFormatError:
            continue  # not ours to show: a record this version cannot read
        if handler is not None and record.handler != handler:
            continue
        letters.append(Letter(kind, shard, name, at_ms, record))
    return sorted(letters, key=lambda letter: (letter.at_ms, letter.member))


def count_letters(client: redis.Redis, kind: Kind = "dead") -> int:
    """How many letters of `kind` every shard holds (one round trip)."""
    pipe = client.pipeline(transaction=False)
    for shard in range(keys.SHARDS):
        pipe.zcard(_zset(shard, kind))
    return sum(int(n) for n in pipe.execute())


def replay(store: Store, letters: list[Letter], now_ms: int) -> int:
    """Put letters back in their handlers' queues, in each key's issued order; returns how many went back."""
    ordered = sorted(letters, key=lambda letter: (letter.record.issued_at_ms, letter.event_id))
    done = 0
    for letter in ordered:
        event = store.archive.get(letter.record.source, letter.event_id)
        if event is None:
            raise ArchiveExpired(f"event {letter.event_id} is past retention: its bytes are gone")
        if store.pairs.replay(letter.record, event, now_ms, from_dead=letter.kind == "dead"):
            done += 1
    return done


def replay_each(
    store: Store, letters: list[Letter], clock_ms: Callable[[], int]
) -> Iterator[tuple[Letter, ReplayResult]]:
    """Replay `letters` one at a time in issued order (within one key the earlier event must be back in the queue
    first, or a worker could run the later one before it arrives), saying what each replay did as it goes."""
    for letter in sorted(letters, key=lambda x: (x.record.issued_at_ms, x.event_id)):
        try:
            back = replay(store, [letter], clock_ms())
        except ArchiveExpired:
            yield letter, "expired"
        else:
            yield letter, "replayed" if back else "gone"


def purge(client: redis.Redis, letters: list[Letter]) -> int:
    """Forget letters for good (their events stay in the archive until retention ends); returns how many.

    Counters move only for letters this call really removed, so a concurrent purge or replay cannot make the
    dead/skipped gauges drift.
    """
    pipe = client.pipeline(transaction=False)
    for letter in letters:
        pipe.zrem(_zset(letter.shard, letter.kind), letter.member)
    removed = [letter for letter, n in zip(letters, pipe.execute(), strict=True) if int(n)]
    pipe = client.pipeline(transaction=False)
    for letter in removed:
        pipe.hdel(keys.DeadLetterKeys(letter.shard).records, letter.member)
        pipe.hincrby(keys.stats_key(letter.shard), f"{letter.kind}:{letter.handler}", -1)
    pipe.execute()
    return len(removed)


def letter_document(letter: Letter, *, full: bool = False) -> dict[str, Any]:
    """A letter as plain data (`hookyard dlq --json`, the console); `full` adds the failure times and traceback."""
    record = letter.record
    document: dict[str, Any] = {
        "kind": letter.kind,
        "event_id": letter.event_id,
        "handler": letter.handler,
        "source": record.source,
        "event_type": record.event_type,
        "set_aside_at": iso(letter.at_ms),
        "issued_at": iso(record.issued_at_ms),
        "attempts": record.attempts,
        "error_type": record.error_type,
        "error_message": record.error_message,
        "ordering_key": record.ordering_key,
        "pair": record.pair,
        "shard": letter.shard,
    }
    if full:
        document["first_failure_at"] = iso(record.first_failure_ms)
        document["last_failure_at"] = iso(record.last_failure_ms)
        document["traceback"] = record.traceback
        document["record"] = record
    return document
