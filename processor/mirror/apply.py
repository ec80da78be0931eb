"""Applying one WorkOS event to the mirror, in the caller's transaction. Which rows each event type writes, and
how (see `writes.py` for why each kind of write is right in any order)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from processor.event import Event
from processor.mirror import payload as p
from processor.mirror.schema import (
    connections,
    directories,
    directory_groups,
    directory_memberships,
    directory_users,
    organization_domains,
    organization_memberships,
    organizations,
    users,
)
from processor.mirror.writes import Stamp, lock, note_event, note_state, put, stub, tombstone

__all__ = ["KNOWN_TYPES", "apply_event"]

Apply = Callable[[sa.Connection, Event, Stamp], None]


def apply_event(conn: sa.Connection, event: Event) -> bool:
    """Apply `event`; False when the mirror keeps nothing of its type (it is then ignored)."""
    apply = _APPLY.get(event.type)
    if apply is None:
        return False
    event = replace(event, data=p.without_nul(event.data))
    stamp = Stamp(event.id, event.type, event.issued_at, p.workos_time(event.data.get("updated_at")))
    apply(conn, event, stamp)
    return True


# --- organizations ----------------------------------------------------------------------------------------


def _organization(conn: sa.Connection, event: Event, stamp: Stamp) -> None:
    data = event.data
    org_id = p.required_text(data, "id", event.type)
    values = {
        "name": p.optional_text(data, "name"),
        "external_id": p.optional_text(data, "external_id"),
        "allow_profiles_outside_organization": _flag(data.get("allow_profiles_outside_organization")),
    }
    put(conn, organizations, {"id": org_id}, values, stamp)
    for domain in data.get("domains") or ():
        if isinstance(domain, dict):
            _put_domain(conn, {**domain, "organization_id": org_id}, event.type, stamp)
    if event.type == "organization.deleted":
        tombstone(conn, organizations, organizations.c.id == org_id, stamp.issued_at)
    _follow_organization(conn, org_id)
    note_event(conn, organizations, {"id": org_id}, stamp)


def _organization_domain(conn: sa.Connection, event: Event, stamp: Stamp) -> None:
    org_id = p.required_text(event.data, "organization_id", event.type)
    # The organization's row is locked before the domain's, in the order an organization.* event takes them (its
    # upsert, then its domains'): taken the other way round, the two deadlock on PostgreSQL.
    _org_stub(conn, org_id)
    lock(conn, organizations, {"id": org_id})
    domain_id, _ = _put_domain(conn, event.data, event.type, stamp)
    if event.type == "organization_domain.deleted":
        tombstone(conn, organization_domains, organization_domains.c.id == domain_id, stamp.issued_at)
    _follow_organization(conn, org_id)
    note_event(conn, organizations, {"id": org_id}, stamp)


def _follow_organization(conn: sa.Connection, org_id: str) -> None:
    # organization.deleted deletes the domains of its organization, including one whose own event arrives after
    # it (or that its list did not name): they get the organization's deletion time, as a directory's users do.
    deleted = conn.scalar(sa.select(organizations.c.deleted_at).where(organizations.c.id == org_id))
    if deleted is not None:
        tombstone(conn, organization_domains, organization_domains.c.organization_id == org_id, deleted)


def _put_domain(conn: sa.Connection, data: dict[str, Any], event_type: str, stamp: Stamp) -> tuple[str, str]:
    domain_id = p.required_text(data, "id", event_type)
    org_id = p.required_text(data, "organization_id", event_type)
    values = {
        "organization_id": org_id,
        "domain": p.required_text(data, "domain", event_type),
        "state": p.optional_text(data, "state"),
        "verification_strategy": p.optional_text(data, "verification_strategy"),
    }
    put(conn, organization_domains, {"id": domain_id}, values, stamp)
    return domain_id, org_id


def _org_stub(conn: sa.Connection, org_id: str | None) -> None:
    if org_id is not None:
        stub(conn, organizations, {"id": org_id}, {})


# --- SSO connections --------------------------------------------------------------------------------------


def _connection(conn: sa.Connection, event: Event, stamp: Stamp) -> None:
    data = event.data
    conn_id = p.required_text(data, "id", event.type)
    org_id = p.optional_text(data, "organization_id")
    _org_stub(conn, org_id)
    values = {
        "organization_id": org_id,
        "connection_type": p.optional_text(data, "connection_type"),
        "name": p.optional_text(data, "name"),
        "state": p.optional_text(data, "state"),
        "status": p.optional_text(data, "status"),
        "domains": p.json_value(data, "domains"),
    }
    put(conn, connections, {"id": conn_id}, values, stamp)
    note_state(conn, connections, conn_id, values["state"], stamp)
    if event.type == "connection.deleted":
        # A connection's domains live in its row, so they go with it; nothing else in the mirror refers to it.
        tombstone(conn, connections, connections.c.id == conn_id, stamp.issued_at)
    note_event(conn, connections, {"id": conn_id}, stamp)


def _certificate(conn: sa.Connection, event: Event, stamp: Stamp) -> None:
    connection = p.object_at(event.data, "connection", event.type)
    conn_id = p.required_text(connection, "id", event.type)
    org_id = p.optional_text(connection, "organization_id")
    _org_stub(conn, org_id)
    stub(conn, connections, {"id": conn_id}, {"organization_id": org_id})
    note_event(conn, connections, {"id": conn_id}, stamp)


# --- Directory Sync ---------------------------------------------------------------------------------------


def _directory(conn: sa.Connection, event: Event, stamp: Stamp) -> None:
    data = event.data
    dir_id = p.required_text(data, "id", event.type)
    org_id = p.optional_text(data, "organization_id")
    _org_stub(conn, org_id)
    values = {
        "organization_id": org_id,
        "type": p.optional_text(data, "type"),
        "name": p.optional_text(data, "name"),
        "state": p.optional_text(data, "state"),
        "domains": p.json_value(data, "domains"),
    }
    put(conn, directories, {"id": dir_id}, values, stamp)
    note_state(conn, directories, dir_id, values["state"], stamp)
    if event.type == "dsync.deleted":
        # WorkOS sends dsync.deleted alone: the directory's users, groups and memberships go with it. The
        # directory's row lock orders this against any child being written at the same time.
        lock(conn, directories, {"id": dir_id})
        for table in (directories, directory_users, directory_groups, directory_memberships):
            column = table.c.id if table is directories else table.c.directory_id
            tombstone(conn, table, column == dir_id, stamp.issued_at)
    note_event(conn, directories, {"id": dir_id}, stamp)


def _in_directory(conn: sa.Connection, data: dict[str, Any], event: Event) -> str:
    """The directory a user, group or membership event is about, made known (with its organization)."""
    dir_id = p.required_text(data, "directory_id", event.type)
    org_id = p.optional_text(data, "organization_id")
    _org_stub(conn, org_id)
    stub(conn, directories, {"id": dir_id}, {"organization_id": org_id})
    # Held to the end of the transaction, as dsync.deleted holds it: a child written while its directory is
    # being deleted then either is seen by the cascade or sees the deletion (PostgreSQL; SQLite writes one at
    # a time anyway).
    lock(conn, directories, {"id": dir_id})
    return dir_id


def _follow_directory(conn: sa.Connection, table: sa.Table, where: sa.ColumnElement[bool], dir_id: str) -> None:
    # A user or group whose event arrives after its directory's dsync.deleted is deleted with it all the same.
    deleted = conn.scalar(sa.select(directories.c.deleted_at).where(directories.c.id == dir_id))
    if deleted is not None:
        tombstone(conn, table, where, deleted)


def _put_user(conn: sa.Connection, data: dict[str, Any], event: Event, stamp: Stamp) -> str:
    dir_id = _in_directory(conn, data, event)
    user_id = p.required_text(data, "id", event.type)
    emails = p.json_value(data, "emails")
    role = data.get("role")
    values = {
        "directory_id": dir_id,
        "organization_id": p.optional_text(data, "organization_id"),
        "idp_id": p.optional_text(data, "idp_id"),
        "state": p.optional_text(data, "state"),
        "email": p.optional_text(data, "email") or _primary_email(emails),
        "username": p.optional_text(data, "username"),
        "first_name": p.optional_text(data, "first_name"),
        "last_name": p.optional_text(data, "last_name"),
        "job_title": p.optional_text(data, "job_title"),
        "emails": emails,
        "role": p.optional_text(role, "slug") if isinstance(role, dict) else None,
        "roles": p.json_value(data, "roles"),
        "custom_attributes": p.json_value(data, "custom_attributes"),
        "raw_attributes": p.json_value(data, "raw_attributes"),
    }
    put(conn, directory_users, {"id": user_id}, values, _own(stamp, data))
    _follow_directory(conn, directory_users, directory_users.c.id == user_id, dir_id)
    return dir_id


def _put_group(conn: sa.Connection, data: dict[str, Any], event: Event, stamp: Stamp) -> str:
    dir_id = _in_directory(conn, data, event)
    group_id = p.required_text(data, "id", event.type)
    values = {
        "directory_id": dir_id,
        "organization_id": p.optional_text(data, "organization_id"),
        "idp_id": p.optional_text(data, "idp_id"),
        "name": p.optional_text(data, "name"),
        "raw_attributes": p.json_value(data, "raw_attributes"),
    }
    put(conn, directory_groups, {"id": group_id}, values, _own(stamp, data))
    _follow_directory(conn, directory_groups, directory_groups.c.id == group_id, dir_id)
    return dir_id


def _directory_user(conn: sa.Connection, event: Event, stamp: Stamp) -> None:
    dir_id = _put_user(conn, event.data, event, stamp)
    if event.type == "dsync.user.deleted":
        user_id = event.data["id"]
        tombstone(conn, directory_users, directory_users.c.id == user_id, stamp.issued_at)
    note_event(conn, directories, {"id": dir_id}, stamp)


def _directory_group(conn: sa.Connection, event: Event, stamp: Stamp) -> None:
    dir_id = _put_group(conn, event.data, event, stamp)
    if event.type == "dsync.group.deleted":
        tombstone(conn, directory_groups, directory_groups.c.id == event.data["id"], stamp.issued_at)
    note_event(conn, directories, {"id": dir_id}, stamp)


def _membership(conn: sa.Connection, event: Event, stamp: Stamp) -> None:
    data = event.data
    user = p.object_at(data, "user", event.type)
    group = p.object_at(data, "group", event.type)
    # The embedded user and group are snapshots as of this event: newer than what the mirror has, they land.
    directory_id = p.optional_text(data, "directory_id")
    dir_id = _put_user(conn, {"directory_id": directory_id, **user}, event, stamp)
    _put_group(conn, {"directory_id": dir_id, **group}, event, stamp)
    key = {"group_id": group["id"], "user_id": user["id"]}
    values = {"directory_id": dir_id, "member": event.type == "dsync.group.user_added"}
    put(conn, directory_memberships, key, values, stamp)
    where = sa.and_(
        directory_memberships.c.group_id == key["group_id"], directory_memberships.c.user_id == key["user_id"]
    )
    _follow_directory(conn, directory_memberships, where, dir_id)
    note_event(conn, directories, {"id": dir_id}, stamp)


# --- User Management --------------------------------------------------------------------------------------


def _user(conn: sa.Connection, event: Event, stamp: Stamp) -> None:
    data = event.data
    user_id = p.required_text(data, "id", event.type)
    values = {
        "email": p.optional_text(data, "email"),
        "email_verified": _flag(data.get("email_verified")),
        "first_name": p.optional_text(data, "first_name"),
        "last_name": p.optional_text(data, "last_name"),
        "external_id": p.optional_text(data, "external_id"),
    }
    put(conn, users, {"id": user_id}, values, stamp)
    if event.type == "user.deleted":
        tombstone(conn, users, users.c.id == user_id, stamp.issued_at)


def _organization_membership(conn: sa.Connection, event: Event, stamp: Stamp) -> None:
    data = event.data
    membership_id = p.required_text(data, "id", event.type)
    org_id = p.optional_text(data, "organization_id")
    role = data.get("role")
    values = {
        "user_id": p.optional_text(data, "user_id"),
        "organization_id": org_id,
        "role": p.optional_text(role, "slug") if isinstance(role, dict) else None,
        "status": p.optional_text(data, "status"),
    }
    put(conn, organization_memberships, {"id": membership_id}, values, stamp)
    if event.type == "organization_membership.deleted":
        tombstone(conn, organization_memberships, organization_memberships.c.id == membership_id, stamp.issued_at)
    if org_id is not None:
        _org_stub(conn, org_id)
        note_event(conn, organizations, {"id": org_id}, stamp)


def _own(stamp: Stamp, data: dict[str, Any]) -> Stamp:
    # A user or group embedded in a membership event carries its own updated_at.
    return replace(stamp, updated_at=p.workos_time(data.get("updated_at")))


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _primary_email(emails: Any) -> str | None:
    if not isinstance(emails, list):
        return None
    entries = [e for e in emails if isinstance(e, dict) and isinstance(e.get("value"), str)]
    primary = [e for e in entries if e.get("primary") is True] or entries
    return str(primary[0]["value"]) if primary else None


_APPLY: dict[str, Apply] = {
    **dict.fromkeys(("organization.created", "organization.updated", "organization.deleted"), _organization),
    **dict.fromkeys(
        (
            "organization_domain.created",
            "organization_domain.updated",
            "organization_domain.verified",
            "organization_domain.verification_failed",
            "organization_domain.deleted",
        ),
        _organization_domain,
    ),
    **dict.fromkeys(("connection.activated", "connection.deactivated", "connection.deleted"), _connection),
    **dict.fromkeys(
        ("connection.saml_certificate_renewed", "connection.saml_certificate_renewal_required"), _certificate
    ),
    **dict.fromkeys(("dsync.activated", "dsync.deactivated", "dsync.deleted"), _directory),
    **dict.fromkeys(("dsync.user.created", "dsync.user.updated", "dsync.user.deleted"), _directory_user),
    **dict.fromkeys(("dsync.group.created", "dsync.group.updated", "dsync.group.deleted"), _directory_group),
    **dict.fromkeys(("dsync.group.user_added", "dsync.group.user_removed"), _membership),
    **dict.fromkeys(("user.created", "user.updated", "user.deleted"), _user),
    **dict.fromkeys(
        ("organization_membership.created", "organization_membership.updated", "organization_membership.deleted"),
        _organization_membership,
    ),
}

#: Every event type the mirror writes something for; other types matched by its patterns are ignored.
KNOWN_TYPES: frozenset[str] = frozenset(_APPLY)
