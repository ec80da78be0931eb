"""Alembic's entry point for the mirror's migrations: always online, on the connection `migrate.py` hands over."""

from __future__ import annotations

from alembic import context

from processor.mirror.migrate import VERSION_TABLE
from processor.mirror.schema import METADATA

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the mirror's migrations through processor.mirror.migrate (hookyard mirror migrate)")
context.configure(
    connection=connection,
    target_metadata=METADATA,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters a table by copying it
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
