"""processor/ingest_share.py: how ingesting processes split the inbox shards between them, on a real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from processor.ingest_share import DEDICATED, STANDBY, IngestShare
from processor.store.calls import Scripts
from processor.store.inbox import Inbox
from shared import keys
from shared.clock import wall_ms
from shared.redis_clients import WORKER_LOOPS, redis_client


@pytest.fixture
def inbox(redis_url: str) -> Iterator[Inbox]:
    client = redis_client(redis_url, WORKER_LOOPS)
    yield Inbox(client, Scripts(client))
    client.close()


def share(inbox: Inbox, role: str, name: str, shards: int = 4) -> IngestShare:
    return IngestShare(inbox, role, shards, wall_ms, 5000, name=name)


def tries(ingester: IngestShare, width: int) -> list[int]:
    """The shards this ingester would compete for, taking each it may (as its shard threads do)."""
    taken = []
    for shard in range(width):
        if ingester.may_try(shard):
            ingester.held(shard, True)
            taken.append(shard)
    return taken


def test_dedicated_ingesters_split_the_shards(inbox: Inbox) -> None:
    # Given two dedicated ingesters on a 4-shard inbox, each having seen the other
    a, b = share(inbox, DEDICATED, "a"), share(inbox, DEDICATED, "b")
    for ingester in (a, b, a):
        ingester.refresh(now=True)
    # Then each takes two shards, and no more
    assert len(tries(a, 4)) == 2
    assert len(tries(b, 4)) == 2


def test_a_newcomer_makes_the_holder_give_shards_up(inbox: Inbox) -> None:
    # Given one dedicated ingester holding all four shards
    a = share(inbox, DEDICATED, "a")
    a.refresh(now=True)
    assert tries(a, 4) == [0, 1, 2, 3]
    # When a second one appears
    share(inbox, DEDICATED, "b").refresh(now=True)
    a.refresh(now=True)
    # Then the first gives its highest shards up, one per batch, down to its share
    assert a.over_share(3) and not a.over_share(0)
    a.held(3, False)
    assert a.over_share(2)
    a.held(2, False)
    assert not any(a.over_share(shard) for shard in range(4))
    assert a.holding == {0, 1}


def test_stand_by_ingesters_wait_while_a_dedicated_one_lives(inbox: Inbox) -> None:
    # Given a dedicated ingester and a worker's stand-by ingester
    share(inbox, DEDICATED, "a").refresh(now=True)
    standby = share(inbox, STANDBY, "w1")
    standby.refresh(now=True)
    # Then the stand-by takes nothing
    assert tries(standby, 4) == []


def test_stand_by_ingesters_split_the_shards_without_a_dedicated_one(inbox: Inbox) -> None:
    w1, w2 = share(inbox, STANDBY, "w1"), share(inbox, STANDBY, "w2")
    for ingester in (w1, w2, w1):
        ingester.refresh(now=True)
    assert len(tries(w1, 4)) == 2


def test_the_width_a_receiver_recorded_wins_over_a_smaller_setting(inbox: Inbox) -> None:
    # Given workers configured for 1 shard, and a receiver that writes 6
    assert inbox.widen(6) == 6
    assert inbox.widen(2) == 6  # the width only grows
    ingester = share(inbox, DEDICATED, "a", shards=1)
    ingester.refresh(now=True)
    # Then the ingester drains all six
    assert ingester.width == 6
    assert tries(ingester, ingester.width) == [0, 1, 2, 3, 4, 5]


def test_a_shard_holding_messages_is_drained_though_no_width_was_recorded(
    inbox: Inbox, redis_client: redis.Redis
) -> None:
    # Given messages in inbox shard 5 and no recorded width (a failover took the record back)
    redis_client.rpush(keys.inbox_keys(5).queue, b"waiting")
    # When an ingester configured for one shard looks, Then it drains six
    ingester = share(inbox, DEDICATED, "a", shards=1)
    ingester.refresh(now=True)
    assert ingester.width == 6
    assert inbox.depth() == 1
