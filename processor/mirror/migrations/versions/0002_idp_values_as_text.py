"""What an identity provider or a customer types (emails, usernames, domains, roles, external ids, IdP ids) becomes
unbounded text: PostgreSQL refused a value longer than 255 characters that SQLite stored.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen here, not read from schema.py: a migration says what its own revision did.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "mirror_organizations": ("external_id",),
    "mirror_organization_domains": ("domain",),
    "mirror_directory_users": ("idp_id", "email", "username", "role"),
    "mirror_directory_groups": ("idp_id",),
    "mirror_users": ("email", "external_id"),
    "mirror_organization_memberships": ("role",),
}
_NOT_NULL = {("mirror_organization_domains", "domain")}


def _retype(old: sa.types.TypeEngine[str], new: sa.types.TypeEngine[str]) -> None:
    # batch_alter_table: ALTER COLUMN on PostgreSQL, a copy of the table (indexes kept) on SQLite.
    for table, columns in _COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.alter_column(
                    column, existing_type=old, type_=new, existing_nullable=(table, column) not in _NOT_NULL
                )


def upgrade() -> None:
    _retype(sa.String(255), sa.Text())


def downgrade() -> None:
    # Refused by PostgreSQL while a longer value is stored: shortening it silently would lose data.
    _retype(sa.Text(), sa.String(255))
