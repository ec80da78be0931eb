"""The mirror's built-in handlers, registered through the same path as every handler (`processor.discovery`
imports this module when `HOOKYARD_MIRROR_URL` is set, then `bind`s the URL).

Each handler's `order_by` keeps its events apart the way the mirror's writes touch rows: a directory's
`dsync.deleted` deletes its users, groups and memberships, so a directory's events go one at a time
(`"directory"`). The writes are right in any order on their own (see `writes.py`); the ordering only spares
them waiting on each other's row locks. A database that cannot take a write now (down, timed out, locked) raises
`MirrorUnavailable`, so the processor retries the event; an event whose data the database refuses (a constraint,
a value out of range) is as malformed as one missing an id: `MalformedEvent`, dead-lettered at once, since
retrying it would only hold up the events queued behind it.
"""

from __future__ import annotations

import threading

import sqlalchemy as sa
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from processor.event import Event
from processor.handlers import handler
from processor.mirror.apply import apply_event
from processor.mirror.payload import MalformedEvent
from processor.mirror.status import mirror_engine
from shared.errors import HookyardError
from shared.logging import get_logger

__all__ = [
    "MirrorUnavailable",
    "bind",
    "mirror_connections",
    "mirror_directories",
    "mirror_organizations",
    "mirror_users",
]

log = get_logger("hookyard.mirror")

# A database outage should not dead-letter: about 4 h of retries (backoff up to 5 min) before it does.
_ATTEMPTS, _MAX_BACKOFF_S = 60, 300.0


class MirrorUnavailable(HookyardError):
    """The mirror database did not take a write (refused, timed out, locked): the event is retried."""


class _Binding:
    def __init__(self) -> None:
        self.url: str | None = None
        self.engine: sa.Engine | None = None
        self.lock = threading.Lock()

    def get(self) -> sa.Engine:
        with self.lock:
            if self.engine is None:
                if self.url is None:
                    raise MirrorUnavailable("the mirror handlers were loaded without a URL: set HOOKYARD_MIRROR_URL")
                self.engine = mirror_engine(self.url)
            return self.engine


_binding = _Binding()


def bind(url: str) -> None:
    """Write to the mirror at `url` from now on (the engine is made on first use)."""
    with _binding.lock:
        if _binding.url != url and _binding.engine is not None:
            _binding.engine.dispose()
            _binding.engine = None
        _binding.url = url


def _apply(event: Event) -> None:
    engine = _binding.get()
    try:
        with engine.begin() as conn:
            applied = apply_event(conn, event)
    except (DataError, IntegrityError) as exc:
        # The same event would be refused again: its data, not the database, is at fault. The reason names the
        # driver's error class only, never the refused value (it may be personal data).
        raise MalformedEvent(f"{event.type}: the mirror database refused its data ({_reason(exc)})") from exc
    except DBAPIError as exc:
        # Translated so the dead letter says what failed without the driver's connection details.
        raise MirrorUnavailable(f"the mirror database refused the write ({_reason(exc)})") from exc
    log.debug("mirror.applied", event_id=event.id, event_type=event.type, applied=applied)


def _reason(exc: DBAPIError) -> str:
    return type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__


@handler(
    "organization.*",
    "organization_domain.*",
    "organization_membership.*",
    name="hookyard.mirror.organizations",
    order_by="organization",
    max_attempts=_ATTEMPTS,
    max_backoff=_MAX_BACKOFF_S,
)
def mirror_organizations(event: Event) -> None:
    _apply(event)


@handler(
    "connection.*",
    name="hookyard.mirror.connections",
    order_by="resource",
    max_attempts=_ATTEMPTS,
    max_backoff=_MAX_BACKOFF_S,
)
def mirror_connections(event: Event) -> None:
    _apply(event)


@handler(
    "dsync.*",
    name="hookyard.mirror.directories",
    order_by="directory",
    max_attempts=_ATTEMPTS,
    max_backoff=_MAX_BACKOFF_S,
)
def mirror_directories(event: Event) -> None:
    _apply(event)


@handler(
    "user.*", name="hookyard.mirror.users", order_by="resource", max_attempts=_ATTEMPTS, max_backoff=_MAX_BACKOFF_S
)
def mirror_users(event: Event) -> None:
    _apply(event)
