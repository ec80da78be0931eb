"""Sharded inbox (HOOKYARD_INBOX_SHARDS): ingesters in several processes share the shard leases, an ingester that
dies hands its shards over, and order per key never depends on which shard (or when) an event was ingested."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis

from shared import keys
from shared.redis_clients import OPERATOR
from shared.redis_clients import redis_client as store_client
from tests.conftest import StoreUnderTest
from tests.processor.test_worker_processes import (
    Processor,
    _children_with,
    _events,
    check_ledger,
    every_event_handled,
    ledger,
    overlapping_runs,
    wait_for,
)

pytestmark = pytest.mark.slow

SHARDS = 4


def lease_holders(client: redis.Redis) -> dict[int, bytes | None]:
    return {shard: client.get(keys.inbox_keys(shard).lease) for shard in range(SHARDS)}


def test_ingesters_share_the_shards_and_order_holds_across_them(
    store: StoreUnderTest, redis_url: str, redis_client: redis.Redis, processor_factory: list[Processor]
) -> None:
    # Given two processor fleets (two dedicated ingesters) on a 4-shard inbox
    env = {"HOOKYARD_INBOX_SHARDS": str(SHARDS), "TEST_LEDGER_URL": redis_url}
    if store.kind == "cluster":
        env["HOOKYARD_BROKER_URL"] = redis_url
    fleets = [Processor(store.url, workers=1, extra=env) for _ in range(2)]
    processor_factory.extend(fleets)
    client = store_client(store.url, OPERATOR)
    try:
        # When 400 events over 10 users land on the shards with each user's events spread over all four, newest
        # first in the lower shards (inbox order is the reverse of issued order within each round of four)
        messages = _events(400, 10, int(time.time() * 1000))
        for start in range(0, len(messages), SHARDS):
            for shard, message in enumerate(reversed(messages[start : start + SHARDS])):
                client.rpush(keys.inbox_keys(shard).queue, message)
        for shard in range(SHARDS):
            client.rpush(keys.inbox_keys(shard).wake, 1)
        expected = {f"event_{i:05d}" for i in range(400)}

        # Then every event is handled once, in issued order per user, with no overlapping runs
        wait_for(lambda: every_event_handled(redis_client, expected), 90, "every event to be handled")
        report = check_ledger(ledger(redis_client), expected)
        assert report == {"lost": 0, "doubled": 0, "misordered": 0, "reruns": 0, "resumed": 0}, report
        assert overlapping_runs(redis_client) == 0

        # And the two dedicated ingesters hold two shards each
        # (an ingester that started first took every shard, and hands the extra ones over one batch at a time)
        def shared_evenly() -> bool:
            held = list(lease_holders(client).values())
            return None not in held and sorted(held.count(h) for h in set(held)) == [2, 2]

        wait_for(shared_evenly, 30, "the shards to be shared two and two")
        holders = list(lease_holders(client).values())

        # When one fleet's ingester is SIGKILLed (its supervisor restarts it, under a new token)
        [ingester] = _children_with(fleets[0].process.pid, "--ingester")
        os.kill(ingester, signal.SIGKILL)
        more = _events(440, 10, int(time.time() * 1000))[400:]
        for n, message in enumerate(more):
            client.rpush(keys.inbox_keys(n % SHARDS).queue, message)
        # Then its shards' leases lapse and are taken over, and the new events are handled once, in order
        expected |= {f"event_{i:05d}" for i in range(400, 440)}
        wait_for(lambda: every_event_handled(redis_client, expected), 90, "the events after the kill to be handled")
        report = check_ledger(ledger(redis_client), expected)
        assert report["lost"] == 0 and report["doubled"] == 0 and report["misordered"] == 0, report
        # And every shard is held again, by the survivor and the restarted ingester (the dead one holds none)

        def handed_over() -> bool:
            now = list(lease_holders(client).values())
            return None not in now and len(set(now) & set(holders)) == 1 and len(set(now)) == 2

        wait_for(handed_over, 30, "the dead ingester's shards to be taken over")
    finally:
        client.close()
