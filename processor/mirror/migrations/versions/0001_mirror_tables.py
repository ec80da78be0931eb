"""The mirror's tables: organizations and their domains, SSO connections, directories with their users, groups
and memberships, User Management users and organization memberships, and the state history.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = 255  # the length of every id and short text, as in schema.py at this revision


def _id(name: str, *, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.String(ID), nullable=nullable)


def _time(name: str, *, nullable: bool = True) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _versioned() -> list[sa.Column[Any]]:
    return [
        _id("version", nullable=False),
        _id("event_id"),
        _id("event_type"),
        _time("issued_at"),
        _time("workos_updated_at"),
        _time("deleted_at"),
    ]


def _last_event() -> list[sa.Column[Any]]:
    return [_id("last_event_version"), _id("last_event_type"), _time("last_event_at")]


def _table(name: str, key: list[str], *columns: sa.Column[Any], indexes: tuple[str, ...] = ()) -> None:
    op.create_table(name, *columns, sa.PrimaryKeyConstraint(*key, name=f"pk_{name}"))
    for column in indexes:
        op.create_index(f"ix_{name}_{column}", name, [column])


def upgrade() -> None:
    _table(
        "mirror_organizations",
        ["id"],
        _id("id", nullable=False),
        sa.Column("name", sa.Text()),
        _id("external_id"),
        sa.Column("allow_profiles_outside_organization", sa.Boolean()),
        *_versioned(),
        *_last_event(),
    )
    _table(
        "mirror_organization_domains",
        ["id"],
        _id("id", nullable=False),
        _id("organization_id", nullable=False),
        _id("domain", nullable=False),
        _id("state"),
        _id("verification_strategy"),
        *_versioned(),
        indexes=("organization_id",),
    )
    _table(
        "mirror_connections",
        ["id"],
        _id("id", nullable=False),
        _id("organization_id"),
        _id("connection_type"),
        sa.Column("name", sa.Text()),
        _id("state"),
        _id("status"),
        sa.Column("domains", sa.JSON()),
        _time("state_since"),
        *_versioned(),
        *_last_event(),
        indexes=("organization_id",),
    )
    _table(
        "mirror_directories",
        ["id"],
        _id("id", nullable=False),
        _id("organization_id"),
        _id("type"),
        sa.Column("name", sa.Text()),
        _id("state"),
        sa.Column("domains", sa.JSON()),
        _time("state_since"),
        *_versioned(),
        *_last_event(),
        indexes=("organization_id",),
    )
    _table(
        "mirror_directory_users",
        ["id"],
        _id("id", nullable=False),
        _id("directory_id", nullable=False),
        _id("organization_id"),
        _id("idp_id"),
        _id("state"),
        _id("email"),
        _id("username"),
        sa.Column("first_name", sa.Text()),
        sa.Column("last_name", sa.Text()),
        sa.Column("job_title", sa.Text()),
        sa.Column("emails", sa.JSON()),
        _id("role"),
        sa.Column("roles", sa.JSON()),
        sa.Column("custom_attributes", sa.JSON()),
        sa.Column("raw_attributes", sa.JSON()),
        *_versioned(),
        indexes=("directory_id",),
    )
    _table(
        "mirror_directory_groups",
        ["id"],
        _id("id", nullable=False),
        _id("directory_id", nullable=False),
        _id("organization_id"),
        _id("idp_id"),
        sa.Column("name", sa.Text()),
        sa.Column("raw_attributes", sa.JSON()),
        *_versioned(),
        indexes=("directory_id",),
    )
    _table(
        "mirror_directory_memberships",
        ["group_id", "user_id"],
        _id("group_id", nullable=False),
        _id("user_id", nullable=False),
        _id("directory_id", nullable=False),
        sa.Column("member", sa.Boolean(), nullable=False),
        *_versioned(),
        indexes=("user_id", "directory_id"),
    )
    _table(
        "mirror_users",
        ["id"],
        _id("id", nullable=False),
        _id("email"),
        sa.Column("email_verified", sa.Boolean()),
        sa.Column("first_name", sa.Text()),
        sa.Column("last_name", sa.Text()),
        _id("external_id"),
        *_versioned(),
    )
    _table(
        "mirror_organization_memberships",
        ["id"],
        _id("id", nullable=False),
        _id("user_id"),
        _id("organization_id"),
        _id("role"),
        _id("status"),
        *_versioned(),
        indexes=("user_id", "organization_id"),
    )
    _table(
        "mirror_state_changes",
        ["object_id", "event_id"],
        _id("object_id", nullable=False),
        _id("event_id", nullable=False),
        _time("issued_at", nullable=False),
        _id("state", nullable=False),
    )


def downgrade() -> None:
    for name in (
        "mirror_state_changes",
        "mirror_organization_memberships",
        "mirror_users",
        "mirror_directory_memberships",
        "mirror_directory_groups",
        "mirror_directory_users",
        "mirror_directories",
        "mirror_connections",
        "mirror_organization_domains",
        "mirror_organizations",
    ):
        op.drop_table(name)
