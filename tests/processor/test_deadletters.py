"""Reading dead letters for a page: the newest N of every shard merged (never all of them), and their count."""

from __future__ import annotations

import redis

from processor import deadletters
from processor.records import DeadLetter
from shared import keys


def _letter(client: redis.Redis, i: int) -> None:
    shard = i % keys.SHARDS
    member = f"pair{i}:event_{i:03d}"
    record = DeadLetter(
        event_id=f"event_{i:03d}",
        handler="h",
        source="workos",
        ordering_key=f"user_{i}",
        pair=f"pair{i}",
        shard=shard,
        issued_at_ms=1_000 + i,
        error_type="RuntimeError",
        error_message="refused",
        attempts=3,
        first_failure_ms=2_000 + i,
        last_failure_ms=3_000 + i,
    )
    dk = keys.DeadLetterKeys(shard)
    client.zadd(dk.dead, {member: 10_000 + i})
    client.hset(dk.records, member, record.encode())


def test_the_newest_letters_come_from_every_shard_oldest_first(redis_client: redis.Redis) -> None:
    # Given 40 dead letters spread over the shards, set aside one millisecond apart
    for i in range(40):
        _letter(redis_client, i)
    # When the newest 7 are asked for, then exactly those come back, oldest first
    newest = deadletters.list_letters(redis_client, "dead", newest=7)
    assert [letter.event_id for letter in newest] == [f"event_{i:03d}" for i in range(33, 40)]
    # And the count is every letter, and without `newest` all are read
    assert deadletters.count_letters(redis_client, "dead") == 40
    assert len(deadletters.list_letters(redis_client, "dead")) == 40
    assert deadletters.count_letters(redis_client, "skipped") == 0
