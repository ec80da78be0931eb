"""The four kinds of write the mirror makes, each right under any order and any repetition of the events:

- `put`: last writer wins, by version — the row takes an event's values only if the event is newer than the
  event that last wrote it (an older event never overwrites a newer row; a redelivery changes nothing);
- `tombstone`: `deleted_at` is the earliest deletion seen, never cleared, so no late event can bring an object back;
- `stub`: a row for an object another event named (an organization known from its connection), with no values;
- `note_event` / `note_state`: the newest event about an object, and every state it was reported in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from processor.mirror.schema import state_changes
from processor.mirror.versions import NO_VERSION, version_of

__all__ = ["Stamp", "lock", "note_event", "note_state", "put", "stub", "tombstone"]


@dataclass(frozen=True, slots=True)
class Stamp:
    """Which event a write comes from, and so how new it is."""

    event_id: str
    event_type: str
    issued_at: datetime
    updated_at: datetime | None

    @property
    def version(self) -> str:
        return version_of(self.issued_at, self.updated_at, self.event_id)

    def columns(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "issued_at": self.issued_at,
            "workos_updated_at": self.updated_at,
        }


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    # ON CONFLICT is spelt the same by both backends' SQLAlchemy dialects, but each has its own construct.
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the mirror supports PostgreSQL and SQLite, not {conn.dialect.name}")


def put(conn: sa.Connection, table: sa.Table, key: Mapping[str, str], values: Mapping[str, Any], stamp: Stamp) -> None:
    """Write `values` to the row at `key` unless a newer (or the same) event wrote it already."""
    row = {**key, **values, **stamp.columns()}
    stmt = _insert(conn, table).values(row)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key),
        set_={name: stmt.excluded[name] for name in row if name not in key},
        where=table.c.version < stmt.excluded.version,
    )
    conn.execute(stmt)


def stub(conn: sa.Connection, table: sa.Table, key: Mapping[str, str], parent: Mapping[str, str | None]) -> None:
    """Make sure a row exists at `key`; fill `parent` ids (never changed by WorkOS) where still unknown."""
    conn.execute(_insert(conn, table).values({**key, "version": NO_VERSION}).on_conflict_do_nothing())
    for name, value in parent.items():
        if value is not None:
            conn.execute(sa.update(table).where(*_match(table, key), table.c[name].is_(None)).values({name: value}))


def lock(conn: sa.Connection, table: sa.Table, key: Mapping[str, str]) -> None:
    """Lock the row at `key` until the transaction ends (SELECT ... FOR UPDATE; SQLite has no row locks)."""
    conn.execute(sa.select(*(table.c[name] for name in key)).where(*_match(table, key)).with_for_update())


def tombstone(conn: sa.Connection, table: sa.Table, where: sa.ColumnElement[bool], at: datetime) -> None:
    """Mark the rows matching `where` deleted at `at`, unless already marked deleted at `at` or earlier."""
    conn.execute(
        sa.update(table)
        .where(where, sa.or_(table.c.deleted_at.is_(None), table.c.deleted_at > at))
        .values(deleted_at=at)
    )


def note_event(conn: sa.Connection, table: sa.Table, key: Mapping[str, str], stamp: Stamp) -> None:
    """Remember `stamp` as the newest event about the row at `key` (which must exist) if it is."""
    newest = f"{stamp.version}"
    column = table.c.last_event_version
    conn.execute(
        sa.update(table)
        .where(*_match(table, key), sa.or_(column.is_(None), column < newest))
        .values(last_event_version=newest, last_event_type=stamp.event_type, last_event_at=stamp.issued_at)
    )


def note_state(conn: sa.Connection, table: sa.Table, object_id: str, state: str | None, stamp: Stamp) -> None:
    """Record the state an event reported, then recompute since when the object is in its current state."""
    if state:
        report = {"issued_at": stamp.issued_at, "state": state, "version": stamp.version}
        conn.execute(
            _insert(conn, state_changes)
            .values(object_id=object_id, event_id=stamp.event_id, **report)
            .on_conflict_do_nothing()
        )
    current = conn.scalar(sa.select(table.c.state).where(table.c.id == object_id))
    columns = state_changes.c
    history = [
        # Reports sort by the same version the row's writes compare, so `current` is the state of the last report
        # and ties of issued time resolve as the row did.
        (version or version_of(issued_at, None, event_id), issued_at, seen)
        for version, issued_at, event_id, seen in conn.execute(
            sa.select(columns.version, columns.issued_at, columns.event_id, columns.state).where(
                columns.object_id == object_id
            )
        )
    ]
    # The current state began with the first report of it after the last report of any other state.
    other = max((version for version, _, seen in history if seen != current), default=None)
    began = min(
        ((version, when) for version, when, seen in history if seen == current and (other is None or version > other)),
        default=None,
    )
    since = began[1] if began is not None else None
    conn.execute(sa.update(table).where(table.c.id == object_id).values(state_since=since))


def _match(table: sa.Table, key: Mapping[str, str]) -> list[sa.ColumnElement[bool]]:
    return [table.c[name] == value for name, value in key.items()]
