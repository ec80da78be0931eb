"""Dead letters and skipped late events: list, find and replay them (for the CLI, the test harness and ops)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

import redis

from processor.records import DeadLetter
from processor.store import Store
from shared import keys
from shared.errors import ArchiveExpired, WireFormatError

__all__ = ["Kind", "Letter", "list_letters", "purge", "replay"]

Kind = Literal["dead", "skipped"]


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
) -> list[Letter]:
    """Letters of every shard, oldest first, filtered."""
    low = "-inf" if since_ms is None else since_ms
    high = "+inf" if until_ms is None else until_ms
    pipe = client.pipeline(transaction=False)
    for shard in range(keys.SHARDS):
        pipe.zrangebyscore(_zset(shard, kind), low, high, withscores=True)
    rows = cast(list[list[tuple[bytes, float]]], pipe.execute())
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
