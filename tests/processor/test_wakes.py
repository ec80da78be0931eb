"""Wake-ups on each kind of broker (processor/broker.py, processor/wakes.py), without a Dramatiq worker: messages
land in the configured queue, its depth is read from there, and a broker that is down or hung costs the wake-ups
sent meanwhile — never a blocked caller, never an exception — and is said once per outage."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from structlog.testing import capture_logs

from processor.broker import build_broker, close_broker, probe_broker, queued_wakeups
from processor.devtools.embedded_redis import EmbeddedRedis, free_port
from processor.devtools.rabbitmq import PrivateRabbitmq
from processor.engine import Engine
from processor.handlers import Registry
from shared import keys
from shared.settings import Settings
from tests.processor.test_worker_processes import wait_for


def engine_for(redis_url: str, broker_url: str) -> Engine:
    registry = Registry()
    registry.handler("dsync.*", order_by="none", name="sink")(lambda e: None)
    env = {"REDIS_URL": redis_url, "HOOKYARD_BROKER_URL": broker_url, "HOOKYARD_WORKER_THREADS": "1"}
    return Engine(Settings.from_env(env, require_secret=False), registry)


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    built: list[Engine] = []
    yield built
    for engine in built:
        engine.close()


def test_wakeups_land_in_rabbitmq_and_are_counted_there(
    redis_url: str, redis_client: redis.Redis, rabbitmq_url: str, engines: list[Engine]
) -> None:
    # Given an engine whose broker is RabbitMQ (one thread: one pair per message)
    engine = engine_for(redis_url, rabbitmq_url)
    engines.append(engine)
    # When it sends three wake-ups
    engine.send_wake([(0, "p1"), (1, "p2"), (2, "p3")], "ingest")
    assert engine.wakes.flush(10)
    # Then RabbitMQ holds three messages, read by the workers, the metrics and the CLI alike; the store holds none
    wait_for(lambda: engine.wakes.queued() == 3, 10, "the sender to read the queue depth")
    assert queued_wakeups(engine.broker) == 3
    assert probe_broker(rabbitmq_url).queued == 3
    assert redis_client.llen(keys.WAKE_QUEUE) == 0
    assert engine.wakes.dropped == 0


def test_wakeups_land_in_a_broker_redis_of_their_own(redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path / "wakes") as wakes:
        # Given an engine whose broker is a second Redis
        engine = engine_for(redis_url, wakes.url)
        try:
            # When it sends two wake-ups, then they wait there, not in the store
            engine.send_wake([(0, "p1"), (1, "p2")], "sweep")
            assert engine.wakes.flush(10)
            wait_for(lambda: engine.wakes.queued() == 2, 10, "the sender to read the queue depth")
            assert probe_broker(wakes.url).queued == 2
            assert redis_client.llen(keys.WAKE_QUEUE) == 0
        finally:
            engine.close()


def test_a_broker_that_is_down_loses_wakeups_says_so_once_and_recovers(
    redis_url: str, tmp_path: Path, engines: list[Engine]
) -> None:
    wakes = EmbeddedRedis(tmp_path / "wakes")
    # Given an engine whose broker Redis is not running
    engine = engine_for(redis_url, wakes.url)
    engines.append(engine)
    with capture_logs() as logged:
        # When it sends wake-ups, then each call returns, and the wake-ups are dropped (lost, for the sweep)
        for i in range(5):
            engine.send_wake([(0, f"p{i}")], "ingest")
        assert engine.wakes.flush(10)
        assert engine.wakes.dropped == 5
        assert engine.wakes.outage.down
        # And the broker's depth reads 0 instead of failing the sweep that asks
        assert engine.wakes.queued() == 0
        # When the broker comes up, then the next wake-up goes through and the outage is over
        wakes.start()
        try:
            engine.send_wake([(0, "again")], "sweep")
            wait_for(lambda: engine.wakes.flush(1) and not engine.wakes.outage.down, 10, "a send to succeed")
            assert probe_broker(wakes.url).queued == 1
        finally:
            wakes.stop()
    events = [entry["event"] for entry in logged if entry["event"].startswith("broker.")]
    assert events == ["broker.unavailable", "broker.available_again"]


def test_a_hung_rabbitmq_never_holds_the_sender(
    redis_url: str, rabbitmq_node: PrivateRabbitmq, rabbitmq_url: str, engines: list[Engine]
) -> None:
    # Given an engine on RabbitMQ that has sent one wake-up (its connection is open)
    engine = engine_for(redis_url, rabbitmq_url)
    engines.append(engine)
    engine.send_wake([(0, "before")], "ingest")
    assert engine.wakes.flush(10)
    # When the node hangs (SIGSTOP)
    rabbitmq_node.pause()
    try:
        # Then sending returns at once, again and again (a caller blocked here would hang this test), while the
        # sender thread waits for the broker
        for i in range(50):
            engine.send_wake([(0, f"during{i}")], "ingest")
        assert not engine.wakes.flush(0.5)
    finally:
        rabbitmq_node.resume()
    # And once the broker answers again, what waited is sent or dropped, and sending works again
    wait_for(lambda: engine.wakes.flush(1), 60, "the sender to finish with what waited")
    engine.send_wake([(0, "after")], "sweep")
    wait_for(lambda: engine.wakes.flush(1) and not engine.wakes.outage.down, 30, "a send after the hang")
    wait_for(lambda: engine.wakes.queued() >= 2, 10, "`before` and `after` in the queue")


def test_an_unreachable_rabbitmq_is_reported_without_its_password() -> None:
    # Given a RabbitMQ URL with a password where nothing listens
    url = f"amqp://hy:hunter2hunter2@127.0.0.1:{free_port()}/%2F"
    # When it is probed, then it is unreachable, and neither the URL nor the error shows the password
    state = probe_broker(url)
    assert not state.reachable and state.queued is None
    assert "hunter2" not in f"{state.url} {state.error}"
    assert state.url.startswith("amqp://hy:***@127.0.0.1:")


def test_the_redis_broker_keeps_the_store_namespace(redis_url: str, redis_client: redis.Redis) -> None:
    # Given the default broker (the store's Redis), a message sent through it waits under the documented key
    broker = build_broker(redis_url)
    try:
        assert queued_wakeups(broker) == 0
        redis_client.rpush(keys.WAKE_QUEUE, "m1", "m2")
        assert queued_wakeups(broker) == 2
    finally:
        close_broker(broker)
