"""The wake-up broker (HOOKYARD_BROKER_URL) on real worker processes: events flow through a private RabbitMQ node,
and a broker that hangs, stops, or comes back empty while events keep arriving loses nothing — every event reaches
its handler once, in key order, after the sweep has re-sent the lost wake-ups (docs/operations.md).

The handlers write one ledger of starts and completions in the store (tests/fixtures/nemesis_handlers.py).
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pika
import pytest
import redis

from processor.devtools.embedded_redis import EmbeddedRedis
from processor.devtools.rabbitmq import PrivateRabbitmq
from shared import keys
from shared.wire import QueuedEvent, encode_message
from tests.processor.test_pauses_and_hangs import HANDLERS, Line, nemesis, read_ledger, violations, worker_pids
from tests.processor.test_worker_processes import Processor, wait_for

pytestmark = pytest.mark.slow

USERS = 6
#: The outage the issue asks for: RabbitMQ hung for 30 s mid-run.
OUTAGE_S = 30.0


def deliver(client: redis.Redis, first: int, count: int) -> list[str]:
    """Events `first`..`first + count - 1`, round-robin over USERS resources, issued one second apart in id order
    (so batches delivered one after another keep one order per resource)."""
    now = int(time.time() * 1000)
    ids, messages = [], []
    for i in range(first, first + count):
        eid = f"event_{i:05d}"
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1_700_000_000 + i)) + ".000Z"
        body = orjson.dumps(
            {"id": eid, "event": "dsync.user.updated", "data": {"id": f"user_{i % USERS}"}, "created_at": created}
        )
        messages.append(encode_message(QueuedEvent("workos", eid, "dsync.user.updated", now, now, body)))
        ids.append(eid)
    client.rpush(keys.INBOX, *messages)
    client.rpush(keys.INBOX_WAKE, 1)
    return ids


def all_done(client: redis.Redis, expected: set[str]) -> bool:
    rows = read_ledger(client)
    return all({r.event_id for r in rows if r.phase == "done" and r.handler == h} >= expected for h in HANDLERS)


def assert_once_in_order(rows: list[Line], expected: set[str]) -> None:
    """Every expected event started and completed exactly once per handler, each key's events in id order."""
    assert violations(rows) == []
    for phase in ("start", "done"):
        counts = Counter((r.handler, r.event_id) for r in rows if r.phase == phase)
        assert counts == Counter({(h, e): 1 for h in HANDLERS for e in expected}), phase
    by_key: dict[str, list[str]] = {}
    for r in rows:
        if r.phase == "done" and r.handler == "nemesis.ordered":
            by_key.setdefault(r.key, []).append(r.event_id)
    assert all(ids == sorted(ids) for ids in by_key.values()), by_key


def inbox_drained(client: redis.Redis) -> bool:
    return int(client.llen(keys.INBOX)) == 0


@pytest.fixture
def started(redis_url: str) -> Iterator[list[Processor]]:
    running: list[Processor] = []
    yield running
    for proc in running:
        proc.stop()


def test_events_flow_through_rabbitmq(
    redis_client: redis.Redis, redis_url: str, rabbitmq_url: str, started: list[Processor]
) -> None:
    # Given two workers whose wake-ups go to the private RabbitMQ node
    proc = nemesis(redis_url, workers=2, threads=2, HOOKYARD_BROKER_URL=rabbitmq_url)
    started.append(proc)
    # When events arrive
    expected = set(deliver(redis_client, 0, 48))
    # Then each reaches both handlers once, in key order
    wait_for(lambda: all_done(redis_client, expected), 60, "all events")
    assert_once_in_order(read_ledger(redis_client), expected)
    # And the wake-ups travelled through RabbitMQ: its queue exists, and the store holds no Dramatiq key
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq_url))
    connection.channel().queue_declare(keys.WAKE_QUEUE_NAME, passive=True)  # raises if no worker declared it
    connection.close()
    assert list(redis_client.scan_iter(f"{keys.WAKE_NAMESPACE}*")) == []


def test_rabbitmq_hung_for_30_s_mid_run_loses_nothing(
    rabbitmq_node: PrivateRabbitmq,
    rabbitmq_url: str,
    redis_client: redis.Redis,
    redis_url: str,
    started: list[Processor],
) -> None:
    # Given two workers on RabbitMQ, busy with a first batch of events
    proc = nemesis(redis_url, workers=2, threads=2, HOOKYARD_BROKER_URL=rabbitmq_url, NEMESIS_SECONDS="0.05")
    started.append(proc)
    wait_for(lambda: len(worker_pids(proc)) == 2, 30, "both workers")
    expected = set(deliver(redis_client, 0, 24))
    wait_for(lambda: len(read_ledger(redis_client)) >= 4, 30, "calls in flight")
    # When the RabbitMQ node hangs (SIGSTOP) for 30 s while events keep arriving
    rabbitmq_node.pause()
    try:
        paused_at = time.monotonic()
        batch = 0
        while time.monotonic() - paused_at < OUTAGE_S:
            batch += 1
            expected |= set(deliver(redis_client, 24 * batch, 24))
            # Then the workers keep ingesting: each batch leaves the inbox during the outage
            wait_for(lambda: inbox_drained(redis_client), 5, "the batch to be ingested with RabbitMQ hung")
            # A batch every 5 s for the length of the outage: the load under test, not a wait for work
            time.sleep(max(0.0, min(paused_at + batch * 5, paused_at + OUTAGE_S) - time.monotonic()))
    finally:
        rabbitmq_node.resume()
    assert batch >= 5
    # Then, once it answers again, every event reaches both handlers exactly once, in key order
    resumed_at = time.monotonic()
    wait_for(lambda: all_done(redis_client, expected), 90, "all events after the outage")
    assert_once_in_order(read_ledger(redis_client), expected)
    print(
        f"\nRabbitMQ hung {OUTAGE_S:g} s: the backlog was done {time.monotonic() - resumed_at:.1f} s after it resumed"
    )


def test_rabbitmq_stopped_then_restarted_loses_nothing(
    rabbitmq_node: PrivateRabbitmq,
    rabbitmq_url: str,
    redis_client: redis.Redis,
    redis_url: str,
    started: list[Processor],
) -> None:
    # Given one worker on RabbitMQ that has run a first batch
    proc = nemesis(redis_url, workers=1, threads=2, HOOKYARD_BROKER_URL=rabbitmq_url)
    started.append(proc)
    expected = set(deliver(redis_client, 0, 12))
    wait_for(lambda: all_done(redis_client, expected), 60, "the first batch")
    # When RabbitMQ is stopped cleanly (its connections closed) and events arrive meanwhile
    rabbitmq_node.stop()
    expected |= set(deliver(redis_client, 12, 24))
    # Then the worker ingests them with the broker gone
    wait_for(lambda: inbox_drained(redis_client), 30, "ingest with RabbitMQ stopped")
    # And when RabbitMQ is back, the consumer reconnects and every event completes once, in key order
    rabbitmq_node.start()
    restarted_at = time.monotonic()
    wait_for(lambda: all_done(redis_client, expected), 60, "all events after the restart")
    assert_once_in_order(read_ledger(redis_client), expected)
    print(f"\nRabbitMQ restarted: the backlog was done {time.monotonic() - restarted_at:.1f} s after it started")


@pytest.fixture
def broker_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "broker-redis")
    server.start()
    yield server
    server.stop()


def test_a_broker_redis_killed_and_restarted_empty_loses_nothing(
    broker_redis: EmbeddedRedis, redis_client: redis.Redis, redis_url: str, started: list[Processor]
) -> None:
    # Given two workers whose wake-ups go to a Redis of their own, and a stream of events
    proc = nemesis(redis_url, workers=2, threads=2, HOOKYARD_BROKER_URL=broker_redis.url, NEMESIS_SECONDS="0.05")
    started.append(proc)
    expected = set(deliver(redis_client, 0, 24))
    wait_for(lambda: len(read_ledger(redis_client)) >= 4, 30, "calls in flight")
    # When the broker Redis is killed mid-run, events arrive, and it comes back empty (every queued wake-up lost)
    broker_redis.stop(kill=True)
    expected |= set(deliver(redis_client, 24, 24))
    wait_for(lambda: inbox_drained(redis_client), 30, "ingest with the broker Redis gone")
    shutil.rmtree(broker_redis.data_dir)  # no append-only file to load: it starts empty
    broker_redis.start()
    restarted_at = time.monotonic()
    # Then the sweep wakes every pair again, and every event completes once, in key order
    wait_for(lambda: all_done(redis_client, expected), 60, "all events after the broker came back empty")
    print(f"\nbroker Redis back empty: the backlog was done {time.monotonic() - restarted_at:.1f} s after it started")
    assert_once_in_order(read_ledger(redis_client), expected)
    # And the store never carried a wake-up
    assert list(redis_client.scan_iter(f"{keys.WAKE_NAMESPACE}*")) == []


def test_workers_started_before_their_broker_ingest_and_run_once_it_is_up(
    tmp_path: Path, redis_client: redis.Redis, redis_url: str, started: list[Processor]
) -> None:
    # Given workers whose broker Redis is not running yet (a deploy where the broker comes up last)
    broker = EmbeddedRedis(tmp_path / "late-broker")
    proc = nemesis(redis_url, workers=1, threads=2, HOOKYARD_BROKER_URL=broker.url)
    started.append(proc)
    # When events arrive, then they are ingested all the same
    expected = set(deliver(redis_client, 0, 12))
    wait_for(lambda: inbox_drained(redis_client), 30, "ingest without a broker")
    assert read_ledger(redis_client) == []
    # And once the broker is up, every event completes once, in key order
    broker.start()
    try:
        wait_for(lambda: all_done(redis_client, expected), 60, "all events once the broker is up")
        assert_once_in_order(read_ledger(redis_client), expected)
    finally:
        broker.stop()
