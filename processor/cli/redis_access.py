"""One Redis connection per CLI verb, with connection failures turned into one readable line.

An operator who runs `hookyard stats` against a Redis that is down needs to read "cannot reach Redis at …",
not a traceback: every redis-py connection error (and the store's own translation of one) raised inside
`connect` becomes a `StoreUnavailable` that names the server, without its password. The client's timeouts are
bounded and it never retries (shared/redis_clients.py: `OPERATOR`), so a frozen Redis fails a verb in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from processor.cli.addresses import without_password
from processor.records import StoreTimings
from processor.store import Store
from shared.errors import StoreUnavailable
from shared.redis_clients import OPERATOR, redis_client
from shared.settings import Settings

__all__ = ["connect", "open_store"]


@contextmanager
def connect(settings: Settings) -> Iterator[redis.Redis]:
    """A client for `settings.redis_url`, closed on exit; unreachable Redis raises `StoreUnavailable`."""
    url = without_password(settings.redis_url)
    client = redis_client(settings.redis_url, OPERATOR)
    try:
        yield client
    except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError) as exc:
        raise StoreUnavailable(f"cannot reach Redis at {url}: {_reason(exc)}") from None
    except StoreUnavailable as exc:
        cause = exc.__cause__
        if isinstance(cause, redis.ConnectionError | redis.TimeoutError | redis.BusyLoadingError):
            raise StoreUnavailable(f"cannot reach Redis at {url}: {_reason(cause)}") from None
        raise StoreUnavailable(f"Redis at {url} refused the step: {exc}") from None
    finally:
        client.close()


def open_store(client: redis.Redis, settings: Settings) -> Store:
    """The state store with the timings the workers use, so a replay re-arms a pair as a worker would."""
    return Store(client, StoreTimings.from_settings(settings))


def _reason(exc: redis.RedisError) -> str:
    # redis-py's messages repeat the address ("Error 111 connecting to 127.0.0.1:6390. Connection refused.");
    # the line already names the server, so keep the cause only when it is there.
    text = " ".join(str(exc).split()) or type(exc).__name__
    cause = text.rsplit(". ", 1)[-1].rstrip(".") if text.startswith("Error ") and ". " in text else text
    return cause
