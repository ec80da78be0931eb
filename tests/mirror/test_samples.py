"""Every WorkOS sample payload in tests/fixtures/workos, and every event type the mirror keeps, lands in the rows
it should, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from processor.devtools.samples import EVENT_TYPES
from processor.mirror.apply import KNOWN_TYPES
from processor.mirror.queries import groups_of_user, users_of_directory
from processor.mirror.schema import (
    connections,
    directories,
    directory_memberships,
    directory_users,
    organization_domains,
    organization_memberships,
    organizations,
    users,
)
from processor.mirror.status import organization_status
from tests.fixtures import WORKOS_SAMPLES
from tests.mirror.events import ORG, T0, apply, envelope, org_membership, organization, organization_domain, um_user

SAMPLE_FILES = sorted(p.name for p in WORKOS_SAMPLES.iterdir() if p.suffix in (".json", ".body"))


def load(name: str) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads((WORKOS_SAMPLES / name).read_bytes())
    return body


def row(engine: sa.Engine, table: sa.Table, **key: str) -> Any:
    with engine.connect() as conn:
        found = conn.execute(sa.select(table).where(*(table.c[k] == v for k, v in key.items()))).one_or_none()
    assert found is not None, f"no {table.name} row {key}"
    return found


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def test_every_sample_file_is_covered() -> None:
    assert set(SAMPLE_FILES) == set(EXPECTED)


def _connection_activated(engine: sa.Engine) -> None:
    conn = row(engine, connections, id="conn_01EHWNC0FCBHZ3BJ7EGKYXK0E6")
    assert (conn.state, conn.connection_type, conn.status) == ("active", "OktaSAML", "linked")
    assert conn.organization_id == "org_01EHWNCE74X7JSDV0X3SZ3KJNY"
    assert conn.state_since == conn.issued_at == at("2021-06-25T19:07:33.155Z")
    assert conn.workos_updated_at == at("2021-06-25T19:07:33.155Z")
    status = organization_status(engine, "org_01EHWNCE74X7JSDV0X3SZ3KJNY")
    assert status is not None
    assert (status.sso_state, status.sso_connection_type, status.domains) == ("active", "OktaSAML", ("foo-corp.com",))
    assert status.last_event_type == "connection.activated"


def _connection_deactivated(engine: sa.Engine) -> None:
    conn = row(engine, connections, id="conn_01FMXJ0YAP7JX3377YFV2XPCJE")
    assert (conn.state, conn.connection_type, conn.domains, conn.status) == ("inactive", "GoogleSAML", None, None)
    status = organization_status(engine, "org_01FKPWZWPHE9VN2QXJ7G1BZYP8")
    assert status is not None and status.sso_state == "inactive"


def _dsync_activated(engine: sa.Engine) -> None:
    directory = row(engine, directories, id="directory_01EHWNC0FCBHZ3BJ7EGKYXK0E6")
    assert (directory.state, directory.type, directory.name) == ("active", "generic scim v2.0", "Foo Corp's Directory")
    status = organization_status(engine, "org_01EZTR6WYX1A0DSE2CYMGXQ24Y")
    assert status is not None
    assert (status.directory_state, status.directory_type, status.domains) == (
        "active",
        "generic scim v2.0",
        ("foo-corp.com",),
    )
    assert status.last_sync_at == status.directory_since == at("2021-06-25T19:07:33.155Z")


def _dsync_deleted(engine: sa.Engine) -> None:
    directory = row(engine, directories, id="directory_01EHWNC0FCBHZ3BJ7EGKYXK0E6")
    assert directory.state == "deleting"
    assert directory.deleted_at == at("2021-06-25T19:07:33.155Z")
    status = organization_status(engine, "org_01EZTR6WYX1A0DSE2CYMGXQ24Y")
    assert status is not None
    assert (status.directory_state, status.directories, status.last_event_type) == (None, 0, "dsync.deleted")


def _group_user_added(engine: sa.Engine) -> None:
    member = row(engine, directory_memberships, user_id="directory_user_01FMV8XE3E2CJH7TRBKMSBH8QF")
    assert member.group_id == "directory_group_01FM6VVN382N5NBJ310H2KMGZA" and member.member is True
    # No created_at in this sample: the event is as new as its signature (the test signs it at T0).
    assert member.issued_at == T0
    groups = groups_of_user(engine, "directory_user_01FMV8XE3E2CJH7TRBKMSBH8QF")
    assert [g.name for g in groups] == ["Account Management"]
    people = users_of_directory(engine, "directory_01FM6VV23GH5NKE5TTD2HGTDZ4")
    assert [(u.first_name, u.email) for u in people] == [("Michael", "michael.hadley@foo-corp.com")]


def _user_created(engine: sa.Engine) -> None:
    user = row(engine, directory_users, id="directory_user_01FAEAJCR3ZBZ30D8BD1924TVG")
    assert (user.first_name, user.last_name, user.state, user.email) == ("Blair", "Lunchford", "active", None)
    assert user.raw_attributes["title"] == "Software Engineer"
    assert user.directory_id == "directory_01F9M7F68PZP8QXP8G7X5QRHS7"
    # Known only through its user, the directory has no state yet, and no organization to show it under.
    assert row(engine, directories, id="directory_01F9M7F68PZP8QXP8G7X5QRHS7").state is None


def _user_updated_docs(engine: sa.Engine) -> None:
    user = row(engine, directory_users, id="directory_user_01E1X1B89NH8Z3SDFJR4H7RGX7")
    assert user.issued_at == at("2023-04-28T20:05:31.093Z")  # the non-ISO created_at, read as UTC
    assert (user.first_name, user.last_name, user.email) == ("Lela", None, "veda@foo-corp.com")
    assert user.custom_attributes == {"department": "Engineering"}
    status = organization_status(engine, "org_01EZTR6WYX1A0DSE2CYMGXQ24Y")
    assert status is not None and (status.users, status.last_sync_at) == (1, at("2023-04-28T20:05:31.093Z"))


def _user_updated_schema(engine: sa.Engine) -> None:
    user = row(engine, directory_users, id="directory_user_01E1JG7J09H96KYP8HM9B0G5SJ")
    assert (user.role, user.email, user.job_title) == ("admin", "marcelina.davis@example.com", "Software Engineer")
    assert user.roles == [{"slug": "admin"}]
    assert user.workos_updated_at == at("2026-01-15T12:00:00.000Z")


EXPECTED = {
    "connection.activated.body": _connection_activated,
    "connection.deactivated.json": _connection_deactivated,
    "dsync.activated.json": _dsync_activated,
    "dsync.deleted.json": _dsync_deleted,
    "dsync.group.user_added.json": _group_user_added,
    "dsync.user.created.json": _user_created,
    "dsync.user.updated.docs-example.json": _user_updated_docs,
    "dsync.user.updated.schema.json": _user_updated_schema,
}


@pytest.mark.parametrize("name", SAMPLE_FILES)
def test_a_sample_lands_in_its_rows(engine: sa.Engine, name: str) -> None:
    # Given a migrated, empty mirror
    # When the sample is applied, twice (a redelivery)
    assert apply(engine, load(name)) is True
    assert apply(engine, load(name)) is True
    # Then its rows say what the payload said
    EXPECTED[name](engine)


def test_every_event_type_is_kept(engine: sa.Engine) -> None:
    # Given one event of every type the sample builder knows, and of the organization and User Management types
    built = [envelope(t, i, resource_id=f"res_{i}") for i, t in enumerate(EVENT_TYPES)]
    built += [
        organization("organization.created", 100, domains=(("foo-corp.com", "pending"),)),
        organization("organization.updated", 101, name="Foo Corporation", domains=(("foo-corp.com", "pending"),)),
        organization_domain("organization_domain.verified", 102),
        organization_domain("organization_domain.created", 103, domain="foo.io", state="pending"),
        organization_domain("organization_domain.verification_failed", 104, domain="foo.io", state="failed"),
        um_user("user.created", 105),
        um_user("user.updated", 106, first_name="Augusta"),
        org_membership("organization_membership.created", 107),
        org_membership("organization_membership.updated", 108, role="admin"),
    ]
    # When each is applied
    # Then the mirror keeps each (none is ignored as unknown), and every type it keeps is among them
    assert [apply(engine, body) for body in built] == [True] * len(built)
    assert {body["event"] for body in built} | {
        "organization.deleted",
        "organization_domain.updated",
        "organization_domain.deleted",
        "user.deleted",
        "organization_membership.deleted",
        "dsync.deactivated",
    } == KNOWN_TYPES
    org = row(engine, organizations, id=ORG)
    assert (org.name, org.last_event_type) == ("Foo Corporation", "organization_membership.updated")
    domains = {(d.domain, d.state) for d in _all(engine, organization_domains)}
    assert domains == {("foo-corp.com", "verified"), ("foo.io", "failed")}
    assert (row(engine, users, id="user_01HQMIRROR").first_name) == "Augusta"
    assert row(engine, organization_memberships, id="om_01HQMIRROR").role == "admin"
    status = organization_status(engine, ORG)
    assert status is not None
    assert {"foo-corp.com", "foo.io"} <= set(status.domains)


def test_an_unknown_type_is_ignored(engine: sa.Engine) -> None:
    # A type matched by the mirror's patterns that it does not know (a future WorkOS event) writes nothing.
    body = envelope("dsync.user.created", 1)
    body["event"] = "dsync.user.reticulated"
    assert apply(engine, body) is False
    assert _all(engine, directory_users) == []


def _all(engine: sa.Engine, table: sa.Table) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table)))
