"""Small sequences of WorkOS events about the same few objects, in issuing order: the material the ordering
tests shuffle and repeat."""

from __future__ import annotations

from typing import Any

from tests.mirror.events import DIRECTORY, envelope, org_membership, organization, organization_domain

USER = "directory_user_01HQMIRRORUSER0000000000"
GROUP = "directory_group_01HQMIRRORGROUP000000000"
CONNECTION = "conn_01HQMIRRORCONNECTION0000000"


def user(event_type: str, seconds: float, **fields: Any) -> dict[str, Any]:
    return envelope(event_type, seconds, resource_id=USER, **fields)


def group(event_type: str, seconds: float, **fields: Any) -> dict[str, Any]:
    return envelope(event_type, seconds, resource_id=GROUP, **fields)


def membership(event_type: str, seconds: float) -> dict[str, Any]:
    body = envelope(event_type, seconds, resource_id=USER)
    body["data"]["group"]["id"] = GROUP
    return body


def connection(event_type: str, seconds: float) -> dict[str, Any]:
    return envelope(event_type, seconds, resource_id=CONNECTION, connection_type="OktaSAML")


def directory(event_type: str, seconds: float) -> dict[str, Any]:
    return envelope(event_type, seconds, resource_id=DIRECTORY, type="okta scim v2.0")


SEQUENCES: dict[str, list[dict[str, Any]]] = {
    "user created, updated, deleted": [
        user("dsync.user.created", 1),
        user("dsync.user.updated", 2, job_title="Staff Engineer"),
        user("dsync.user.deleted", 3),
    ],
    "group created, updated, deleted": [
        group("dsync.group.created", 1),
        group("dsync.group.updated", 2, name="Renamed"),
        group("dsync.group.deleted", 3),
    ],
    "membership added, removed, added": [
        membership("dsync.group.user_added", 1),
        membership("dsync.group.user_removed", 2),
        membership("dsync.group.user_added", 3),
    ],
    "connection activated, deactivated, activated, deleted": [
        connection("connection.activated", 1),
        connection("connection.deactivated", 2),
        connection("connection.activated", 3),
        connection("connection.deleted", 4),
    ],
    "directory activated, user, membership, directory deleted": [
        directory("dsync.activated", 1),
        user("dsync.user.created", 2),
        membership("dsync.group.user_added", 3),
        directory("dsync.deleted", 4),
    ],
    "organization created, domain verified, renamed, deleted": [
        organization("organization.created", 1, domains=(("foo-corp.com", "pending"),)),
        organization_domain("organization_domain.verified", 2),
        organization("organization.updated", 3, name="Foo Corporation", domains=(("foo-corp.com", "verified"),)),
        organization("organization.deleted", 4, name="Foo Corporation", domains=(("foo-corp.com", "verified"),)),
    ],
    "organization created, a domain created, organization deleted listing another": [
        organization("organization.created", 1, domains=(("a.com", "verified"),)),
        organization_domain("organization_domain.created", 2, domain="b.com", state="pending"),
        organization("organization.deleted", 3, domains=(("a.com", "verified"),)),
    ],
    "membership in an organization created, updated, deleted": [
        org_membership("organization_membership.created", 1, status="pending"),
        org_membership("organization_membership.updated", 2, status="active"),
        org_membership("organization_membership.deleted", 3, status="active"),
    ],
}

#: Every event above, for the property test to draw sequences from.
ALL_EVENTS: list[dict[str, Any]] = [body for sequence in SEQUENCES.values() for body in sequence]
