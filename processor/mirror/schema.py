"""The mirror's tables (SQLAlchemy Core). Alembic migrations in `migrations/` create exactly this schema.

Every mirrored object row carries the version of the event that last wrote it (`version`, `event_id`,
`event_type`, `issued_at`, `workos_updated_at`) and a tombstone time (`deleted_at`); see `versions.py`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "METADATA",
    "UtcDateTime",
    "connections",
    "directories",
    "directory_groups",
    "directory_memberships",
    "directory_users",
    "organization_domains",
    "organization_memberships",
    "organizations",
    "state_changes",
    "users",
]

METADATA = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)
# Wide enough for any WorkOS id or event type; PostgreSQL checks it, SQLite does not. What an identity provider or
# a customer types (emails, usernames, domains, roles, external ids) is unbounded `Text`: WorkOS passes it on
# as given, and a value PostgreSQL refused would dead-letter a valid event where SQLite stores it.
ID = 255


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite hands naive values back)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the mirror stores aware datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _version_columns() -> list[sa.Column[Any]]:
    return [
        # Sortable text of (issued time, WorkOS updated_at, event id): a write lands only when greater.
        sa.Column("version", sa.String(ID), nullable=False),
        sa.Column("event_id", sa.String(ID)),
        sa.Column("event_type", sa.String(ID)),
        sa.Column("issued_at", UtcDateTime()),
        sa.Column("workos_updated_at", UtcDateTime()),
        sa.Column("deleted_at", UtcDateTime()),
    ]


def _last_event_columns() -> list[sa.Column[Any]]:
    # The newest event seen about the object, whatever it changed (certificate events change nothing).
    return [
        sa.Column("last_event_version", sa.String(ID)),
        sa.Column("last_event_type", sa.String(ID)),
        sa.Column("last_event_at", UtcDateTime()),
    ]


organizations = sa.Table(
    "mirror_organizations",
    METADATA,
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("name", sa.Text()),
    sa.Column("external_id", sa.Text()),
    sa.Column("allow_profiles_outside_organization", sa.Boolean()),
    *_version_columns(),
    *_last_event_columns(),
)

organization_domains = sa.Table(
    "mirror_organization_domains",
    METADATA,
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("organization_id", sa.String(ID), nullable=False, index=True),
    sa.Column("domain", sa.Text(), nullable=False),
    sa.Column("state", sa.String(ID)),
    sa.Column("verification_strategy", sa.String(ID)),
    *_version_columns(),
)

connections = sa.Table(
    "mirror_connections",
    METADATA,
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("organization_id", sa.String(ID), index=True),
    sa.Column("connection_type", sa.String(ID)),
    sa.Column("name", sa.Text()),
    sa.Column("state", sa.String(ID)),
    sa.Column("status", sa.String(ID)),
    sa.Column("domains", sa.JSON()),
    sa.Column("state_since", UtcDateTime()),
    *_version_columns(),
    *_last_event_columns(),
)

directories = sa.Table(
    "mirror_directories",
    METADATA,
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("organization_id", sa.String(ID), index=True),
    sa.Column("type", sa.String(ID)),
    sa.Column("name", sa.Text()),
    sa.Column("state", sa.String(ID)),
    sa.Column("domains", sa.JSON()),
    sa.Column("state_since", UtcDateTime()),
    *_version_columns(),
    *_last_event_columns(),
)

directory_users = sa.Table(
    "mirror_directory_users",
    METADATA,
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("directory_id", sa.String(ID), nullable=False, index=True),
    sa.Column("organization_id", sa.String(ID)),
    sa.Column("idp_id", sa.Text()),
    sa.Column("state", sa.String(ID)),
    sa.Column("email", sa.Text()),
    sa.Column("username", sa.Text()),
    sa.Column("first_name", sa.Text()),
    sa.Column("last_name", sa.Text()),
    sa.Column("job_title", sa.Text()),
    sa.Column("emails", sa.JSON()),
    sa.Column("role", sa.Text()),
    sa.Column("roles", sa.JSON()),
    sa.Column("custom_attributes", sa.JSON()),
    sa.Column("raw_attributes", sa.JSON()),
    *_version_columns(),
)

directory_groups = sa.Table(
    "mirror_directory_groups",
    METADATA,
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("directory_id", sa.String(ID), nullable=False, index=True),
    sa.Column("organization_id", sa.String(ID)),
    sa.Column("idp_id", sa.Text()),
    sa.Column("name", sa.Text()),
    sa.Column("raw_attributes", sa.JSON()),
    *_version_columns(),
)

directory_memberships = sa.Table(
    "mirror_directory_memberships",
    METADATA,
    sa.Column("group_id", sa.String(ID), primary_key=True),
    sa.Column("user_id", sa.String(ID), primary_key=True, index=True),
    sa.Column("directory_id", sa.String(ID), nullable=False, index=True),
    # user_added writes True, user_removed False: a membership can come back, so removal is not a tombstone.
    sa.Column("member", sa.Boolean(), nullable=False),
    *_version_columns(),
)

users = sa.Table(
    "mirror_users",
    METADATA,
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("email", sa.Text()),
    sa.Column("email_verified", sa.Boolean()),
    sa.Column("first_name", sa.Text()),
    sa.Column("last_name", sa.Text()),
    sa.Column("external_id", sa.Text()),
    *_version_columns(),
)

organization_memberships = sa.Table(
    "mirror_organization_memberships",
    METADATA,
    sa.Column("id", sa.String(ID), primary_key=True),
    sa.Column("user_id", sa.String(ID), index=True),
    sa.Column("organization_id", sa.String(ID), index=True),
    sa.Column("role", sa.Text()),
    sa.Column("status", sa.String(ID)),
    *_version_columns(),
)

# Every state a connection or directory was reported in, once per event: `state_since` is computed from it, so
# it is the same whatever order the events came in.
state_changes = sa.Table(
    "mirror_state_changes",
    METADATA,
    sa.Column("object_id", sa.String(ID), primary_key=True),
    sa.Column("event_id", sa.String(ID), primary_key=True),
    sa.Column("issued_at", UtcDateTime(), nullable=False),
    sa.Column("state", sa.String(ID), nullable=False),
    # The reporting event's version, so reports sort as the rows' writes do (issued time alone can tie). Empty in
    # rows recorded before revision 0003: they sort by issued time and event id.
    sa.Column("version", sa.String(ID)),
)
