"""What a CLI verb works with: its settings (built once from the environment `main` read), one Redis connection,
the handlers a worker started here would load, and the addresses it reaches or prints.

Verbs that only read Redis must work on a machine that has no webhook secret (an operator's shell, a cron job),
and verbs that never touch Redis must work without `REDIS_URL`; both still read every other setting exactly as
the servers do, so a bad value is reported the same way (exit 2, naming the setting).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import redis

from processor.cli.devstate import dev_redis_url, running_stack
from processor.discovery import load_handlers
from processor.handlers import Registry, default_registry
from processor.records import StoreTimings
from processor.store import Store
from shared.errors import ConfigError, StoreUnavailable
from shared.redis_clients import OPERATOR, redis_client
from shared.settings import Settings

__all__ = [
    "client_host",
    "connect",
    "dev_data_dir",
    "load_registry",
    "metrics_url",
    "open_store",
    "redis_trouble",
    "settings_for_redis",
    "settings_maybe_redis",
    "settings_without_redis",
    "webhook_url",
    "with_dev_addresses",
    "without_password",
]

# --- settings -------------------------------------------------------------------------------------------------

_PLACEHOLDER_REDIS_URL = "redis://127.0.0.1:6379/0"
_DEFAULT_DATA_DIR = ".hookyard"  # Settings.data_dir's default


def settings_for_redis(environ: Mapping[str, str]) -> Settings:
    """Settings of a verb that talks to Redis: secrets are not required, and without `REDIS_URL` the embedded
    Redis of a `hookyard dev` running on the same data directory is used (as `send` uses its secret)."""
    settings, found = settings_maybe_redis(environ)
    if not found:
        raise ConfigError(
            "REDIS_URL", f"not set (e.g. redis://127.0.0.1:6379/0), and no `hookyard dev` runs on {settings.data_dir}"
        )
    return settings


def settings_maybe_redis(environ: Mapping[str, str]) -> tuple[Settings, bool]:
    """Settings of a verb that reads Redis when there is one and does without otherwise; True when `REDIS_URL`
    is set or a `hookyard dev` runs on the data directory (its Redis is then the one in the settings)."""
    if environ.get("REDIS_URL", "").strip():
        return Settings.from_env(with_dev_addresses(environ), require_secret=False), True
    settings = settings_without_redis(environ)
    url = dev_redis_url(Path(settings.data_dir))
    if url is None:
        return settings, False
    # Built again rather than replaced: the settings that default to REDIS_URL (HOOKYARD_BROKER_URL) follow it.
    return Settings.from_env({**with_dev_addresses(environ), "REDIS_URL": url}, require_secret=False), True


def settings_without_redis(environ: Mapping[str, str]) -> Settings:
    """Settings of a verb that never talks to Redis; the placeholder only satisfies the one setting it ignores."""
    env = with_dev_addresses(environ)
    if not env.get("REDIS_URL", "").strip():
        env["REDIS_URL"] = _PLACEHOLDER_REDIS_URL
    return Settings.from_env(env, require_secret=False)


def dev_data_dir(environ: Mapping[str, str]) -> Path:
    """The data directory as `Settings` reads it (`HOOKYARD_DATA_DIR`), before the settings are built."""
    return Path(environ.get("HOOKYARD_DATA_DIR", "").strip() or _DEFAULT_DATA_DIR)


def with_dev_addresses(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ`, plus the address settings (`HOOKYARD_PORT`, ...) of a `hookyard dev` running on its data
    directory that it does not set itself — so `HOOKYARD_PORT=8765 make run` in one terminal is found by a plain
    `hookyard send` in another. A `REDIS_URL` naming another Redis says this is not that stack: nothing is added."""
    env = dict(environ)
    stack = running_stack(dev_data_dir(env))
    if stack is None:
        return env
    redis_url = env.get("REDIS_URL", "").strip()
    # Masked on both sides (the stack records its Redis URL without the password): an address, not a secret.
    shown_url = without_password(redis_url)
    if redis_url and shown_url != stack.redis_url:
        return env
    for name, value in stack.settings.items():
        if not env.get(name, "").strip():
            env[name] = value
    return env


# --- redis ----------------------------------------------------------------------------------------------------
# An operator who runs `hookyard stats` against a Redis that is down needs to read one line that says what is
# wrong and what to do, not a traceback: every redis-py connection error or timeout (and the store's own
# translation of one) raised inside `connect` becomes a `StoreUnavailable` that names the server, without its
# password. The client's timeouts are bounded and it never retries (shared/redis_clients.py: `OPERATOR`), so a
# frozen Redis fails a verb in seconds.


@contextmanager
def connect(settings: Settings) -> Iterator[redis.Redis]:
    """A client for `settings.redis_url`, closed on exit; unreachable Redis raises `StoreUnavailable`."""
    client = redis_client(settings.redis_url, OPERATOR)
    try:
        yield client
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailable(_one_line(redis_trouble(exc, settings.redis_url))) from None
    except StoreUnavailable as exc:
        cause = exc.__cause__
        if isinstance(cause, redis.ConnectionError | redis.TimeoutError):
            raise StoreUnavailable(_one_line(redis_trouble(cause, settings.redis_url))) from None
        raise StoreUnavailable(f"Redis at {without_password(settings.redis_url)} refused the step: {exc}") from None
    finally:
        client.close()


def redis_trouble(exc: redis.RedisError, url: str) -> tuple[str, str]:
    """What went wrong talking to the Redis at `url`, and what to do about it: (finding, hint)."""
    shown = without_password(url)
    if isinstance(exc, redis.TimeoutError):
        # Connected (or not) but no reply in time: a SIGSTOPped, swapping or overloaded server, or a black hole.
        return f"Redis at {shown} did not answer within {OPERATOR.socket_timeout_s:g} s", "is it frozen or overloaded?"
    if isinstance(exc, redis.AuthenticationError):
        return f"Redis at {shown} refused our credentials", "check the password in REDIS_URL"
    if isinstance(exc, redis.BusyLoadingError):
        return f"Redis at {shown} is still loading its data", "try again when it has finished"
    if isinstance(exc, redis.ConnectionError):
        return f"cannot reach Redis at {shown}", f"is it running? check REDIS_URL ({_reason(exc)})"
    return f"Redis at {shown} answered with an error", _reason(exc)


def open_store(client: redis.Redis, settings: Settings) -> Store:
    """The state store with the timings the workers use, so a replay re-arms a pair as a worker would."""
    return Store(client, StoreTimings.from_settings(settings))


def _one_line(trouble: tuple[str, str]) -> str:
    finding, hint = trouble
    return f"{finding} — {hint}"


def _reason(exc: redis.RedisError) -> str:
    # redis-py's messages repeat the address ("Error 111 connecting to 127.0.0.1:6390. Connection refused.");
    # the line already names the server, so keep the cause only when it is there.
    text = " ".join(str(exc).split()) or type(exc).__name__
    cause = text.rsplit(". ", 1)[-1].rstrip(".") if text.startswith("Error ") and ". " in text else text
    return cause


# --- handlers -------------------------------------------------------------------------------------------------
# `@handler` registers into `processor.handlers.default_registry` when its module is imported, so that is the
# registry `load_registry` returns; a module imported earlier in the same process is not imported twice and keeps
# its registrations. Handler modules (`HOOKYARD_HANDLERS`) are found from the current directory, as
# `hookyard dev` and `hookyard worker` find them.


def load_registry(settings: Settings) -> Registry:
    """Import every configured handler module; raises `RegistrationError` naming the one that fails."""
    with _importable_from_cwd():
        return load_handlers(settings, default_registry)


@contextmanager
def _importable_from_cwd() -> Iterator[None]:
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


# --- addresses ------------------------------------------------------------------------------------------------

_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


def client_host(host: str) -> str:
    """The address a client uses to reach a server bound to `host` (a wildcard bind is reached on loopback)."""
    if host in ("0.0.0.0", ""):  # noqa: S104 - recognising a bind address, not binding
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def webhook_url(host: str, port: int, source: str) -> str:
    return f"http://{client_host(host)}:{port}/webhooks/{source}"


def metrics_url(host: str, port: int) -> str:
    return f"http://{client_host(host)}:{port}/metrics"


def without_password(url: str) -> str:
    """`url` with any password masked, so it can go into output and error messages."""
    head, sep, rest = url.partition("://")
    # The user info ends at the last '@' before any query: a password may itself hold '@' or '/'.
    query_at = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, query_at)
    if sep and at >= 0 and ":" in rest[:at]:
        rest = rest[:at].split(":", 1)[0] + ":****" + rest[at:]
    return _QUERY_PASSWORD.sub(r"\1****", head + sep + rest)
