"""Each recorded state report keeps its event's version: `state_since` orders reports the way the rows' writes are
ordered, so two reports issued in the same millisecond no longer leave it empty.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Left empty in the rows already there: their version is rebuilt from issued time and event id when read.
    with op.batch_alter_table("mirror_state_changes") as batch:
        batch.add_column(sa.Column("version", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mirror_state_changes") as batch:
        batch.drop_column("version")
