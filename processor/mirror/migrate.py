"""Alembic, driven from code: the mirror's migrations ship inside the package (`migrations/`), so no alembic.ini
is needed anywhere. `hookyard mirror migrate` and `hookyard dev` call `upgrade`."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

__all__ = ["VERSION_TABLE", "current_revision", "downgrade", "head_revision", "upgrade"]

#: Alembic's bookkeeping table, named for the mirror so it can share a database with an app's own migrations.
VERSION_TABLE = "hookyard_mirror_version"
_SCRIPTS = Path(__file__).resolve().parent / "migrations"


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    # The connection goes in by attribute, not as a URL option: a URL's password may hold '%', which the
    # ini-style options would read as interpolation.
    config.attributes["connection"] = connection
    return config


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Migrate the mirror's tables up to `revision` (the newest by default)."""
    with engine.begin() as conn:
        command.upgrade(_config(conn), revision)


def downgrade(engine: sa.Engine, revision: str) -> None:
    """Migrate down to `revision` (`"base"` drops every mirror table)."""
    with engine.begin() as conn:
        command.downgrade(_config(conn), revision)


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database is at, or None when the mirror was never migrated there."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()
