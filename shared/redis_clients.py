"""Every Redis client Hookyard opens, built by one factory from a named policy of timeouts.

`REDIS_URL` may name one server (`redis://`, `rediss://`, `unix://`) or a Redis Cluster by its seed nodes
(`redis+cluster://[user:password@]host:port[,host:port…]`, `rediss+cluster://…` for TLS): the factories then build
redis-py's own cluster clients, which follow `MOVED`/`ASK` redirections and refresh the slot map themselves (a
redirection means the command did not run, so following it is safe). The cluster client is typed as the plain
client: Hookyard uses only commands and pipelines both implement, and the suite runs against both.

No policy retries a command by itself: a command whose reply was lost may already have run, so a silent retry
could store an event twice (the receiver's RPUSH) or repeat a step (the workers' scripts). Each caller retries
at a level where it can see it happen instead: the sender re-delivers after a 503, the worker loops and the
sweep go round again, an operator re-runs a CLI verb.

    receiver_hot_path(enqueue_timeout_s)  the receiver's enqueue and probes: nothing outlasts the enqueue deadline
    WORKER_LOOPS                          the workers' ingest, sweep and lease loops, and their Dramatiq broker
    OPERATOR                              the CLI and the supervisor's metrics scrape: someone waits for an answer
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, cast
from urllib.parse import unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.retry
import redis.cluster
import redis.retry
from redis.backoff import NoBackoff

from shared.errors import ConfigError
from shared.settings import CLUSTER_SCHEMES

__all__ = [
    "OPERATOR",
    "WORKER_LOOPS",
    "ClientPolicy",
    "ClusterAddress",
    "async_redis_client",
    "cluster_address",
    "is_cluster",
    "receiver_hot_path",
    "redact_url",
    "redis_client",
    "unreachable",
]

#: Connecting is a local round trip; a Redis that cannot accept a connection in a second is down for the receiver.
RECEIVER_CONNECT_TIMEOUT_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class ClientPolicy:
    """How long a client waits for Redis, and how it keeps an idle connection honest."""

    name: str
    #: Longest wait for any one reply; a frozen Redis surfaces as a TimeoutError after this.
    socket_timeout_s: float
    connect_timeout_s: float
    #: Seconds idle before a connection is PINGed on its next use (0: never), to find a dead one before a command.
    health_check_interval_s: int = 0
    #: TCP keepalive: a long-lived pool notices a vanished peer (a failed-over Redis) even while idle.
    keepalive: bool = False


def receiver_hot_path(enqueue_timeout_s: float) -> ClientPolicy:
    """The receiver's policy: no reply is waited for past the enqueue deadline a 200 depends on.

    A retried RPUSH whose first reply was lost would store an event twice, and retries with backoff would stall
    a request past that deadline: the sender retries instead, and the processor drops duplicates by event id.
    """
    return ClientPolicy(
        name="receiver",
        socket_timeout_s=enqueue_timeout_s,
        connect_timeout_s=min(RECEIVER_CONNECT_TIMEOUT_S, enqueue_timeout_s),
        keepalive=True,
    )


#: Room for a slow script and for the ingest loop's BLPOP (at most 1 s) on the same pool; the health check
#: finds a connection Redis dropped while a loop was idle before a command is lost on it.
WORKER_LOOPS: Final = ClientPolicy(
    name="worker",
    socket_timeout_s=10.0,
    connect_timeout_s=2.0,
    health_check_interval_s=15,
)

#: Bounded so that a frozen or unreachable Redis gives a clear error within seconds instead of a long hang.
OPERATOR: Final = ClientPolicy(name="operator", socket_timeout_s=3.0, connect_timeout_s=3.0)


@dataclass(frozen=True, slots=True)
class ClusterAddress:
    """A cluster URL taken apart: its seed nodes and the credentials every node shares."""

    seeds: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    tls: bool


def is_cluster(url: str) -> bool:
    return url.startswith(CLUSTER_SCHEMES)


def cluster_address(url: str) -> ClusterAddress:
    """Parse `redis+cluster://[user:password@]host:port[,host:port…][/]`; raises `ConfigError` when malformed."""
    scheme, _, rest = url.partition("://")
    if scheme + "://" not in CLUSTER_SCHEMES:
        raise ConfigError("REDIS_URL", "not a cluster URL (redis+cluster://host:port,…)")
    credentials, _, hosts = rest.rpartition("@")
    hosts = hosts.split("/", 1)[0].split("?", 1)[0]
    seeds: list[tuple[str, int]] = []
    for part in hosts.split(","):
        parsed = urlsplit(f"//{part.strip()}")
        if not parsed.hostname:
            raise ConfigError("REDIS_URL", f"cluster seed {part.strip()!r} is not host:port")
        try:
            seeds.append((parsed.hostname, parsed.port or 6379))
        except ValueError:
            raise ConfigError("REDIS_URL", f"cluster seed {part.strip()!r} has a bad port") from None
    username, _, password = credentials.partition(":") if credentials else ("", "", "")
    return ClusterAddress(
        seeds=tuple(seeds),
        username=unquote(username) or None,
        password=unquote(password) or None,
        tls=scheme == "rediss+cluster",
    )


def _timeouts(policy: ClientPolicy) -> dict[str, Any]:
    return {
        "socket_timeout": policy.socket_timeout_s,
        "socket_connect_timeout": policy.connect_timeout_s,
        "socket_keepalive": policy.keepalive,
        "health_check_interval": policy.health_check_interval_s,
    }


def _cluster_options(url: str, policy: ClientPolicy) -> dict[str, Any]:
    address = cluster_address(url)
    return {
        "username": address.username,
        "password": address.password,
        "ssl": address.tls,
        **_timeouts(policy),
        # Slots of a primary that is failing over fail alone; the others keep working.
        "require_full_coverage": False,
    }


def redis_client(url: str, policy: ClientPolicy) -> redis.Redis:
    """A blocking client for `url` under `policy`; it connects lazily, on first use."""
    retry = redis.retry.Retry(NoBackoff(), 0)
    if is_cluster(url):
        seeds = [redis.cluster.ClusterNode(host, port) for host, port in cluster_address(url).seeds]  # type: ignore[no-untyped-call]
        cluster = redis.cluster.RedisCluster(startup_nodes=seeds, retry=retry, **_cluster_options(url, policy))
        return cast(redis.Redis, cluster)
    return redis.Redis.from_url(url, retry=retry, **_timeouts(policy))


def async_redis_client(url: str, policy: ClientPolicy) -> redis.asyncio.Redis:
    """An asyncio client for `url` under `policy`; it connects lazily, on first use."""
    retry = redis.asyncio.retry.Retry(NoBackoff(), 0)
    if is_cluster(url):
        seeds = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in cluster_address(url).seeds]
        cluster = redis.asyncio.cluster.RedisCluster(startup_nodes=seeds, retry=retry, **_cluster_options(url, policy))
        return cast(redis.asyncio.Redis, cluster)
    return redis.asyncio.Redis.from_url(url, retry=retry, **_timeouts(policy))


def unreachable(url: str, policy: ClientPolicy = OPERATOR) -> str | None:
    """Why the Redis at `url` cannot be used now, in one sentence an operator can act on; None when it answers.

    For a process's start: better one clear line and an exit than a banner followed by a stream of errors.
    """
    client = redis_client(url, policy)
    shown = redact_url(url)
    try:
        client.ping()
    except redis.TimeoutError:
        return f"Redis at {shown} did not answer within {policy.socket_timeout_s:g} s — is it frozen or overloaded?"
    except redis.AuthenticationError as exc:
        return f"Redis at {shown} refused our credentials ({exc}) — check the password in REDIS_URL"
    except redis.ConnectionError as exc:
        return f"cannot reach Redis at {shown} — is it running? check REDIS_URL ({_first_line(exc)})"
    except redis.RedisError as exc:
        return f"Redis at {shown} answered with an error: {_first_line(exc)}"
    finally:
        client.close()
    return None


def redact_url(url: str) -> str:
    """The URL without its password, fit for a log line or a message."""
    head, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    credentials, _, where = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{head}{sep}{user + ':***' if user else '***'}@{where}"


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
