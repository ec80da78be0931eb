"""What an app asks the mirror about directories: who is in a directory, which groups a user is in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from processor.mirror.schema import directory_groups, directory_memberships, directory_users

__all__ = ["DirectoryGroup", "DirectoryUser", "groups_of_user", "users_of_directory"]


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """A directory user as the newest event about it said (attributes exactly as WorkOS sent them)."""

    id: str
    directory_id: str
    organization_id: str | None
    state: str | None
    email: str | None
    username: str | None
    first_name: str | None
    last_name: str | None
    job_title: str | None
    role: str | None
    emails: Any
    custom_attributes: Any
    raw_attributes: Any
    updated_at: datetime | None  # WorkOS's updated_at of that event's user


@dataclass(frozen=True, slots=True)
class DirectoryGroup:
    id: str
    directory_id: str
    organization_id: str | None
    name: str | None
    raw_attributes: Any
    updated_at: datetime | None


def users_of_directory(engine: sa.Engine, directory_id: str, *, active_only: bool = True) -> list[DirectoryUser]:
    """The directory's users that are not deleted (only `state == "active"` ones unless `active_only=False`),
    ordered by id."""
    query = (
        sa.select(directory_users)
        .where(directory_users.c.directory_id == directory_id, directory_users.c.deleted_at.is_(None))
        .order_by(directory_users.c.id)
    )
    if active_only:
        query = query.where(directory_users.c.state == "active")
    with engine.connect() as conn:
        return [_user(row) for row in conn.execute(query)]


def groups_of_user(engine: sa.Engine, user_id: str) -> list[DirectoryGroup]:
    """The groups a directory user is a member of now (neither the group nor the membership deleted), by id."""
    query = (
        sa.select(directory_groups)
        .join(directory_memberships, directory_memberships.c.group_id == directory_groups.c.id)
        .where(
            directory_memberships.c.user_id == user_id,
            directory_memberships.c.member.is_(True),
            directory_memberships.c.deleted_at.is_(None),
            directory_groups.c.deleted_at.is_(None),
        )
        .order_by(directory_groups.c.id)
    )
    with engine.connect() as conn:
        return [_group(row) for row in conn.execute(query)]


def _user(row: Any) -> DirectoryUser:
    return DirectoryUser(
        id=row.id,
        directory_id=row.directory_id,
        organization_id=row.organization_id,
        state=row.state,
        email=row.email,
        username=row.username,
        first_name=row.first_name,
        last_name=row.last_name,
        job_title=row.job_title,
        role=row.role,
        emails=row.emails,
        custom_attributes=row.custom_attributes,
        raw_attributes=row.raw_attributes,
        updated_at=row.workos_updated_at,
    )


def _group(row: Any) -> DirectoryGroup:
    return DirectoryGroup(
        id=row.id,
        directory_id=row.directory_id,
        organization_id=row.organization_id,
        name=row.name,
        raw_attributes=row.raw_attributes,
        updated_at=row.workos_updated_at,
    )
