"""Realistic WorkOS connection and Directory Sync events, for demos (`hookyard send`), load and tests.

Shapes follow WorkOS's documented payloads and the official SDK's event models (the SDK reads every one as its
own event class). A seeded `random.Random` and a fixed `created_at` make an event reproducible byte for byte.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "EVENT_TYPES",
    "sample_event",
]

EVENT_TYPES: tuple[str, ...] = (
    "connection.activated",
    "connection.deactivated",
    "connection.deleted",
    "connection.saml_certificate_renewed",
    "connection.saml_certificate_renewal_required",
    "dsync.activated",
    "dsync.deleted",
    "dsync.user.created",
    "dsync.user.updated",
    "dsync.user.deleted",
    "dsync.group.created",
    "dsync.group.updated",
    "dsync.group.deleted",
    "dsync.group.user_added",
    "dsync.group.user_removed",
)

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TOKEN_CHARS = tuple("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_FIRST_NAMES = ("Blair", "Marcelina", "Michael", "Lela", "Jonah", "Priya", "Kenji", "Amara", "Ingrid")
_LAST_NAMES = ("Lunchford", "Davis", "Hadley", "Block", "Okafor", "Raman", "Sato", "Lindqvist", "Reyes")
_COMPANIES = (("Foo Corp", "foo-corp.com"), ("Acme", "acme.io"), ("Globex", "globex.example"))
_JOB_TITLES = ("Software Engineer", "Account Executive", "Product Designer", "Support Lead", "Data Analyst")
_DEPARTMENTS = ("Engineering", "Sales", "Design", "Customer Success", "Finance")
_GROUP_NAMES = ("Engineering", "Account Management", "Admins", "Support", "Design Guild")
_SAML_CONNECTION_TYPES = ("OktaSAML", "AzureSAML", "GoogleSAML", "OneLoginSAML", "JumpCloudSAML")
_CONNECTION_TYPES = (*_SAML_CONNECTION_TYPES, "GoogleOAuth", "EntraIdOIDC", "GenericOIDC")
_DIRECTORY_TYPES = ("okta scim v2.0", "azure scim v2.0", "gsuite directory", "generic scim v2.0", "workday")
_CERTIFICATE_TYPES = ("ResponseSigning", "RequestSigning", "ResponseEncryption")
_SCIM_CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
_SCIM_ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def sample_event(
    event_type: str,
    *,
    rng: random.Random | None = None,
    resource_id: str | None = None,
    directory_id: str | None = None,
    organization_id: str | None = None,
    created_at: datetime | None = None,
    event_id: str | None = None,
    **data_fields: Any,
) -> dict[str, Any]:
    """Build one WorkOS event envelope: `{"id", "event", "data", "created_at", "object"}`.

    Keyword arguments beyond the named ones set fields of `data`: `sample_event("dsync.user.updated",
    state="inactive")`.

    `resource_id` is the entity the event is about, the one its order matters for: `data.id`, except
    `data.user.id` for `dsync.group.user_*` and `data.connection.id` for `connection.saml_certificate_*`.
    `created_at` defaults to now (a naive value is taken as UTC). Raises `ValueError` for an unknown type.
    """
    build = _BUILDERS.get(event_type)
    if build is None:
        raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(EVENT_TYPES)}")
    rng = rng if rng is not None else random.Random()
    when = _utc(created_at) if created_at is not None else datetime.now(UTC)
    data = build(_Maker(rng, when), _Ids(resource_id, directory_id, organization_id))
    data.update(data_fields)
    return {
        "id": event_id if event_id is not None else _ulid("event", rng, when),
        "event": event_type,
        "data": data,
        "created_at": _iso(when),
        "object": "event",
    }


@dataclass(frozen=True, slots=True)
class _Ids:
    """The ids a caller pinned; the rest are made up."""

    resource: str | None
    directory: str | None
    organization: str | None


@dataclass(frozen=True, slots=True)
class _Maker:
    """Draws every made-up value from one rng, so a seed fixes the whole event."""

    rng: random.Random
    when: datetime

    def pick(self, choices: tuple[str, ...]) -> str:
        return choices[self.rng.randrange(len(choices))]

    def company(self) -> tuple[str, str]:
        return _COMPANIES[self.rng.randrange(len(_COMPANIES))]

    def earlier(self, *, min_days: int = 1, max_days: int = 400) -> datetime:
        """A time before the event: when the entity it is about was created."""
        days = self.rng.randint(min_days, max_days)
        return self.when - timedelta(days=days, seconds=self.rng.randrange(86400))

    def id(self, prefix: str, at: datetime) -> str:
        return _ulid(prefix, self.rng, at)

    def token(self, length: int) -> str:
        return "".join(self.pick(_TOKEN_CHARS) for _ in range(length))

    def digits(self, length: int) -> str:
        return "".join(str(self.rng.randrange(10)) for _ in range(length))


# --- Directory Sync ---------------------------------------------------------------------------------------


def _directory_user(m: _Maker, ids: _Ids, *, user_id: str | None, state: str, new: bool) -> dict[str, Any]:
    _, domain = m.company()
    first, last = m.pick(_FIRST_NAMES), m.pick(_LAST_NAMES)
    email = f"{first.lower()}.{last.lower()}@{domain}"
    title, department = m.pick(_JOB_TITLES), m.pick(_DEPARTMENTS)
    manager = f"{m.pick(_FIRST_NAMES)} {m.pick(_LAST_NAMES)}"
    born = m.when if new else m.earlier()
    idp_id = "00u" + m.token(17)
    return {
        "object": "directory_user",
        "id": user_id or m.id("directory_user", born),
        "directory_id": ids.directory or m.id("directory", born - timedelta(days=30)),
        "organization_id": ids.organization or m.id("org", born - timedelta(days=60)),
        "idp_id": idp_id,
        "email": email,
        "first_name": first,
        "last_name": last,
        "emails": [{"primary": True, "type": "work", "value": email}],
        "job_title": title,
        "username": email,
        "state": state,
        "roles": [{"slug": "member"}],
        "custom_attributes": {"department": department},
        # What the identity provider sent (SCIM here), passed through untouched: the bulk of a real payload.
        "raw_attributes": {
            "schemas": [_SCIM_CORE_USER, _SCIM_ENTERPRISE_USER],
            "externalId": idp_id,
            "active": state == "active",
            "displayName": f"{first} {last}",
            "name": {"givenName": first, "familyName": last},
            "title": title,
            "addresses": [{"primary": True, "locality": "Oakland", "region": "CA", "postalCode": "94607"}],
            _SCIM_ENTERPRISE_USER: {
                "department": department,
                "manager": {"value": m.digits(4), "displayName": manager},
            },
        },
        "created_at": _iso(born),
        "updated_at": _iso(m.when),
    }


def _directory_group(m: _Maker, ids: _Ids, *, group_id: str | None, new: bool) -> dict[str, Any]:
    born = m.when if new else m.earlier()
    name = m.pick(_GROUP_NAMES)
    idp_id = "00g" + m.token(17)
    return {
        "object": "directory_group",
        "id": group_id or m.id("directory_group", born),
        "idp_id": idp_id,
        "directory_id": ids.directory or m.id("directory", born - timedelta(days=30)),
        "organization_id": ids.organization or m.id("org", born - timedelta(days=60)),
        "name": name,
        "raw_attributes": {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": idp_id,
            "displayName": name,
        },
        "created_at": _iso(born),
        "updated_at": _iso(m.when),
    }


def _user_created(m: _Maker, ids: _Ids) -> dict[str, Any]:
    return _directory_user(m, ids, user_id=ids.resource, state="active", new=True)


def _user_updated(m: _Maker, ids: _Ids) -> dict[str, Any]:
    data = _directory_user(m, ids, user_id=ids.resource, state="active", new=False)
    previous_title = m.pick(tuple(t for t in _JOB_TITLES if t != data["job_title"]))
    data["previous_attributes"] = {"job_title": previous_title}
    return data


def _user_deleted(m: _Maker, ids: _Ids) -> dict[str, Any]:
    return _directory_user(m, ids, user_id=ids.resource, state="inactive", new=False)


def _group_created(m: _Maker, ids: _Ids) -> dict[str, Any]:
    return _directory_group(m, ids, group_id=ids.resource, new=True)


def _group_updated(m: _Maker, ids: _Ids) -> dict[str, Any]:
    data = _directory_group(m, ids, group_id=ids.resource, new=False)
    data["previous_attributes"] = {"name": m.pick(tuple(n for n in _GROUP_NAMES if n != data["name"]))}
    return data


def _group_deleted(m: _Maker, ids: _Ids) -> dict[str, Any]:
    return _directory_group(m, ids, group_id=ids.resource, new=False)


def _group_membership(m: _Maker, ids: _Ids) -> dict[str, Any]:
    # No data.id: a membership change is about a user (its resource) and a group of the same directory.
    directory_id = ids.directory or m.id("directory", m.earlier(min_days=400, max_days=800))
    organization_id = ids.organization or m.id("org", m.earlier(min_days=800, max_days=900))
    same_directory = _Ids(None, directory_id, organization_id)
    return {
        "directory_id": directory_id,
        "user": _directory_user(m, same_directory, user_id=ids.resource, state="active", new=False),
        "group": _directory_group(m, same_directory, group_id=None, new=False),
    }


def _directory(m: _Maker, ids: _Ids, *, state: str) -> dict[str, Any]:
    name, domain = m.company()
    born = m.earlier()
    return {
        "object": "directory",
        "id": ids.resource or ids.directory or m.id("directory", born),
        "organization_id": ids.organization or m.id("org", born - timedelta(days=60)),
        "external_key": m.token(16),
        "name": f"{name}'s Directory",
        "type": m.pick(_DIRECTORY_TYPES),
        "state": state,
        "domains": [{"object": "organization_domain", "id": m.id("org_domain", born), "domain": domain}],
        "created_at": _iso(born),
        "updated_at": _iso(m.when),
    }


def _dsync_activated(m: _Maker, ids: _Ids) -> dict[str, Any]:
    return _directory(m, ids, state="active")


def _dsync_deleted(m: _Maker, ids: _Ids) -> dict[str, Any]:
    data = _directory(m, ids, state="deleting")
    # A deleted directory's payload carries neither domains nor external key (see dsync.deleted.json).
    del data["domains"], data["external_key"]
    return data


# --- SSO connections --------------------------------------------------------------------------------------


def _connection(m: _Maker, ids: _Ids, *, state: str, status: str | None) -> dict[str, Any]:
    name, domain = m.company()
    born = m.earlier()
    data: dict[str, Any] = {
        "object": "connection",
        "id": ids.resource or m.id("conn", born),
        "organization_id": ids.organization or m.id("org", born - timedelta(days=60)),
        "connection_type": m.pick(_CONNECTION_TYPES),
        "name": f"{name}'s Connection",
        "state": state,
        "created_at": _iso(born),
        "updated_at": _iso(m.when),
    }
    if status is not None:
        data["status"] = status
        data["external_key"] = m.token(25)
        data["domains"] = [{"object": "connection_domain", "id": m.id("conn_domain", born), "domain": domain}]
    return data


def _connection_activated(m: _Maker, ids: _Ids) -> dict[str, Any]:
    return _connection(m, ids, state="active", status="linked")


def _connection_deactivated(m: _Maker, ids: _Ids) -> dict[str, Any]:
    return _connection(m, ids, state="inactive", status="unlinked")


def _connection_deleted(m: _Maker, ids: _Ids) -> dict[str, Any]:
    return _connection(m, ids, state="inactive", status=None)


def _certificate_connection(m: _Maker, ids: _Ids) -> dict[str, Any]:
    born = m.earlier()
    return {
        "id": ids.resource or m.id("conn", born),
        "organization_id": ids.organization or m.id("org", born - timedelta(days=60)),
        "connection_type": m.pick(_SAML_CONNECTION_TYPES),
    }


def _certificate_renewed(m: _Maker, ids: _Ids) -> dict[str, Any]:
    return {
        "connection": _certificate_connection(m, ids),
        "certificate": {
            "certificate_type": m.pick(_CERTIFICATE_TYPES),
            "expiry_date": _iso(m.when + timedelta(days=365 * m.rng.randint(1, 3))),
        },
        "renewed_at": _iso(m.when),
    }


def _certificate_renewal_required(m: _Maker, ids: _Ids) -> dict[str, Any]:
    days = (60, 30, 14, 7, 1)[m.rng.randrange(5)]
    return {
        "connection": _certificate_connection(m, ids),
        "certificate": {
            "certificate_type": m.pick(_CERTIFICATE_TYPES),
            "expiry_date": _iso(m.when + timedelta(days=days)),
            "is_expired": False,
        },
        "days_until_expiry": days,
    }


# --- ids and times ----------------------------------------------------------------------------------------


def _ulid(prefix: str, rng: random.Random, at: datetime) -> str:
    # ULID layout (48-bit ms time, 80 random bits, Crockford base32), as WorkOS ids: later ids sort later.
    millis = max(0, int(at.timestamp() * 1000)) & ((1 << 48) - 1)
    value = (millis << 80) | rng.getrandbits(80)
    return prefix + "_" + "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _iso(when: datetime) -> str:
    utc = _utc(when)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


_BUILDERS: dict[str, Callable[[_Maker, _Ids], dict[str, Any]]] = {
    "connection.activated": _connection_activated,
    "connection.deactivated": _connection_deactivated,
    "connection.deleted": _connection_deleted,
    "connection.saml_certificate_renewed": _certificate_renewed,
    "connection.saml_certificate_renewal_required": _certificate_renewal_required,
    "dsync.activated": _dsync_activated,
    "dsync.deleted": _dsync_deleted,
    "dsync.user.created": _user_created,
    "dsync.user.updated": _user_updated,
    "dsync.user.deleted": _user_deleted,
    "dsync.group.created": _group_created,
    "dsync.group.updated": _group_updated,
    "dsync.group.deleted": _group_deleted,
    "dsync.group.user_added": _group_membership,
    "dsync.group.user_removed": _group_membership,
}
