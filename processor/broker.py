"""The Dramatiq broker that carries wake-ups, built from `HOOKYARD_BROKER_URL`: a Redis (the store's by default) or
a RabbitMQ. Both only ever carry hints: every failure here means "this wake-up is lost", and the sweep sends it
again once the wake grace has passed (docs/operations.md, "The wake-up broker").

Dramatiq names the queue `hookyard`; on Redis its messages sit in the list `hookyard-dramatiq:hookyard`, on RabbitMQ
in the durable queue `hookyard` (beside it `hookyard.DQ` for delayed and `hookyard.XQ` for dead messages, which
wake-ups never use).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
import dramatiq.errors
import pika
import pika.adapters.utils.connection_workflow
import pika.exceptions
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker

from shared import keys
from shared.redis_clients import OPERATOR, WORKER_LOOPS, ClientPolicy, redact_url, redis_client

__all__ = [
    "BROKER_ERRORS",
    "BrokerState",
    "build_broker",
    "close_broker",
    "is_amqp",
    "probe_broker",
    "queued_wakeups",
]

#: Whatever a broker call raises when the broker cannot take or give a message now.
BROKER_ERRORS: Final = (
    redis.RedisError,
    dramatiq.errors.BrokerError,
    pika.exceptions.AMQPError,
    # A connect that fails before AMQP is spoken (refused, handshake timeout) raises these, not an AMQPError.
    pika.adapters.utils.connection_workflow.AMQPConnectorException,
    OSError,
)

#: pika connection parameters we set unless the URL sets them itself. A RabbitMQ that is down refuses at once; one
#: that hangs (a stopped process, a dead host) must cost a connect seconds, and a hung connection is found by its
#: heartbeat (checked every heartbeat + 5 s by pika) rather than never.
_AMQP_DEFAULTS: Final = {
    "heartbeat": "10",
    "socket_timeout": "2",
    "stack_timeout": "3",
    "connection_attempts": "1",
    "blocked_connection_timeout": "5",
}
#: The same without heartbeats, for a one-off question from an operator (doctor, stats, metrics scrape).
_AMQP_PROBE: Final = {**_AMQP_DEFAULTS, "heartbeat": "0"}


def is_amqp(url: str) -> bool:
    return url.startswith(("amqp://", "amqps://"))


def _amqp_url(url: str, defaults: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    return urlunsplit(parts._replace(query=urlencode({**defaults, **query})))


def build_broker(url: str) -> dramatiq.Broker:
    """A Dramatiq broker for `url`, with no middleware of its own (the engine adds what it needs)."""
    if is_amqp(url):
        # pika logs every lost connection as an error with its traceback, from each thread; an outage is said once
        # by the wake sender (`broker.unavailable`) and by Dramatiq's consumer instead.
        logging.getLogger("pika").setLevel(logging.CRITICAL)
        # confirm_delivery: a publish returns once RabbitMQ holds the message, so a failed one is seen and counted
        # as lost instead of vanishing. Dramatiq declares its queues durable and its messages persistent.
        return RabbitmqBroker(url=_amqp_url(url, _AMQP_DEFAULTS), confirm_delivery=True, middleware=[])
    # An own client under the workers' policy: the store's pool stays free for the store's calls.
    return RedisBroker(  # type: ignore[no-untyped-call]
        client=redis_client(url, WORKER_LOOPS), namespace=keys.WAKE_NAMESPACE, middleware=[]
    )


def close_broker(broker: dramatiq.Broker) -> None:
    """Close the broker's connections (Dramatiq's Redis broker leaves its client's to the garbage collector)."""
    broker.close()
    if isinstance(broker, RedisBroker):
        broker.client.close()


def queued_wakeups(broker: dramatiq.Broker) -> int:
    """How many wake-up messages wait in the broker's queue; raises one of `BROKER_ERRORS` when it cannot say."""
    if isinstance(broker, RabbitmqBroker):
        broker.declare_queue(keys.WAKE_QUEUE_NAME, ensure=True)
        try:
            declared = broker.channel.queue_declare(queue=keys.WAKE_QUEUE_NAME, passive=True)
        except pika.exceptions.AMQPError:
            del broker.connection  # a failed channel is closed: the next call opens new ones
            raise
        return int(declared.method.message_count)
    assert isinstance(broker, RedisBroker)
    return int(broker.client.llen(keys.WAKE_QUEUE))


@dataclass(frozen=True, slots=True)
class BrokerState:
    """What an operator's question to the broker found: reachable or not, and how many wake-ups wait."""

    url: str
    kind: str
    queued: int | None
    elapsed_ms: float
    error: str | None = None

    @property
    def reachable(self) -> bool:
        return self.error is None


def probe_broker(url: str, policy: ClientPolicy = OPERATOR) -> BrokerState:
    """Ask the broker at `url` how many wake-ups wait, within seconds; never raises for an unreachable broker."""
    shown = redact_url(url)
    kind = "rabbitmq" if is_amqp(url) else "redis"
    started = time.perf_counter()
    try:
        queued = _amqp_depth(url) if is_amqp(url) else _redis_depth(url, policy)
    except BROKER_ERRORS as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return BrokerState(shown, kind, None, (time.perf_counter() - started) * 1000, reason[:200])
    return BrokerState(shown, kind, queued, (time.perf_counter() - started) * 1000)


def _redis_depth(url: str, policy: ClientPolicy) -> int:
    client = redis_client(url, policy)
    try:
        return int(client.llen(keys.WAKE_QUEUE))
    finally:
        client.close()


def _amqp_depth(url: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(_amqp_url(url, _AMQP_PROBE)))
    try:
        channel = connection.channel()
        try:
            declared = channel.queue_declare(queue=keys.WAKE_QUEUE_NAME, passive=True)
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:  # no worker has declared the queue yet: nothing waits in it
                return 0
            raise
        return int(declared.method.message_count)
    finally:
        if connection.is_open:
            connection.close()
