"""The shipped Alembic migrations create exactly the schema the code declares, and undo it, on both backends."""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from processor.mirror.migrate import VERSION_TABLE, current_revision, downgrade, head_revision, upgrade
from processor.mirror.schema import METADATA, connections
from processor.mirror.status import mirror_engine
from tests.mirror.events import T0, apply
from tests.mirror.scenarios import CONNECTION, connection


def test_upgrade_head_matches_the_metadata_and_downgrade_base_removes_it(mirror_url: str) -> None:
    engine = mirror_engine(mirror_url)
    try:
        # Given an empty database
        assert current_revision(engine) is None
        # When it is migrated to the newest revision
        upgrade(engine)
        # Then it is at head, and its tables, columns, types, keys and indexes are the metadata's, no more or less
        assert current_revision(engine) == head_revision()
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": VERSION_TABLE})
            assert compare_metadata(context, METADATA) == []
        # And migrating again changes nothing
        upgrade(engine)
        assert current_revision(engine) == head_revision()
        # When it is migrated down to nothing
        downgrade(engine, "base")
        # Then no mirror table is left (only Alembic's own bookkeeping, now empty)
        assert current_revision(engine) is None
        assert set(sa.inspect(engine).get_table_names()) == {VERSION_TABLE}
        # And it can be built again
        upgrade(engine)
        assert set(sa.inspect(engine).get_table_names()) == {VERSION_TABLE, *METADATA.tables}
    finally:
        engine.dispose()


def test_the_migrations_ship_as_package_data() -> None:
    # A wheel built from pyproject carries migrations/*.py, the template and versions/*.py.
    root = Path(__file__).resolve().parents[2]
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data["processor.mirror"]
    shipped = {
        p.relative_to(root / "processor" / "mirror")
        for pattern in patterns
        for p in (root / "processor" / "mirror").glob(pattern)
    }
    needed = {
        p.relative_to(root / "processor" / "mirror")
        for p in (root / "processor" / "mirror" / "migrations").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert needed and needed <= shipped


def test_state_reports_recorded_before_their_versions_still_count(mirror_url: str) -> None:
    engine = mirror_engine(mirror_url)
    try:
        # Given a mirror at revision 0002 holding a connection's activation at 10 s (a report without a version)
        upgrade(engine, "0002")
        old_reports = sa.table(
            "mirror_state_changes",
            sa.column("object_id"),
            sa.column("event_id"),
            sa.column("issued_at"),
            sa.column("state"),
        )
        with engine.begin() as conn:
            conn.execute(
                old_reports.insert().values(
                    object_id=CONNECTION, event_id="event_01OLD", issued_at=T0 + timedelta(seconds=10), state="active"
                )
            )
        # When it is migrated to head and another activation arrives, at 15 s
        upgrade(engine)
        apply(engine, connection("connection.activated", 15))
        # Then the connection is active since the old report, ordered by its issued time
        with engine.connect() as conn:
            since = conn.scalar(sa.select(connections.c.state_since).where(connections.c.id == CONNECTION))
        assert since == T0 + timedelta(seconds=10)
    finally:
        engine.dispose()
