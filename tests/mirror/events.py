"""Building WorkOS events for the mirror tests and applying them the way the handlers do, and reading back
every row the mirror holds."""

from __future__ import annotations

import random
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import sqlalchemy as sa

from processor.devtools.samples import sample_event
from processor.event import Event
from processor.mirror.apply import apply_event
from processor.mirror.payload import workos_time
from processor.mirror.schema import METADATA

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ORG = "org_01HQMIRRORTESTORG000000000"
DIRECTORY = "directory_01HQMIRRORTESTDIR00000000"


def envelope(event_type: str, seconds: float, *, event_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A realistic event issued `seconds` after T0, about the ids given (`resource_id`, ...) and the test's
    organization and directory."""
    when = T0 + timedelta(seconds=seconds)
    fields.setdefault("organization_id", ORG)
    if event_type.startswith("dsync."):
        fields.setdefault("directory_id", DIRECTORY)
    # The same arguments make the same event, byte for byte, in any process.
    seed = zlib.crc32(f"{event_type}|{seconds}|{event_id}|{sorted(fields.items())}".encode())
    return sample_event(event_type, rng=random.Random(seed), created_at=when, event_id=event_id, **fields)


def to_event(body: dict[str, Any], *, signed_at: datetime | None = None) -> Event:
    created = workos_time(body.get("created_at"))
    signed = signed_at or created or T0
    return Event(
        id=str(body["id"]),
        type=str(body["event"]),
        data=body["data"],
        source="workos",
        created_at=created,
        signed_at=signed,
        issued_at=created or signed,
        received_at=signed,
        raw=orjson.dumps(body),
    )


def apply(engine: sa.Engine, body: dict[str, Any]) -> bool:
    with engine.begin() as conn:
        return apply_event(conn, to_event(body))


def snapshot(engine: sa.Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every mirror table, in a fixed order."""
    rows: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for table in METADATA.sorted_tables:
            found = [dict(row._mapping) for row in conn.execute(sa.select(table))]
            rows[table.name] = sorted(found, key=lambda row: repr(sorted(row.items())))
    return rows


def reset(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(METADATA.sorted_tables):
            conn.execute(sa.delete(table))


def _iso(seconds: float) -> str:
    when = T0 + timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _wrap(event_type: str, seconds: float, data: dict[str, Any], event_id: str | None) -> dict[str, Any]:
    number = zlib.crc32(f"{event_type}|{seconds}|{sorted(data.items())}".encode())
    return {
        "object": "event",
        "id": event_id or f"event_{number:026d}",
        "event": event_type,
        "data": {**data, "created_at": _iso(0), "updated_at": _iso(seconds)},
        "created_at": _iso(seconds),
    }


def organization(
    event_type: str,
    seconds: float,
    *,
    name: str = "Foo Corp",
    domains: tuple[tuple[str, str], ...] = (),
    event_id: str | None = None,
) -> dict[str, Any]:
    """An organization.* event (WorkOS's documented organization object); `domains` are (domain, state)."""
    listed = [
        {"object": "organization_domain", "id": f"org_domain_{domain}", "domain": domain, "state": state,
         "verification_strategy": "dns"}
        for domain, state in domains
    ]  # fmt: skip
    data = {"object": "organization", "id": ORG, "name": name, "allow_profiles_outside_organization": False,
            "domains": listed, "external_id": None}  # fmt: skip
    return _wrap(event_type, seconds, data, event_id)


def organization_domain(
    event_type: str, seconds: float, *, domain: str = "foo-corp.com", state: str = "verified"
) -> dict[str, Any]:
    data = {"object": "organization_domain", "id": f"org_domain_{domain}", "organization_id": ORG,
            "domain": domain, "state": state, "verification_strategy": "dns", "verification_token": "tok"}  # fmt: skip
    return _wrap(event_type, seconds, data, None)


def um_user(
    event_type: str, seconds: float, *, user_id: str = "user_01HQMIRROR", first_name: str = "Ada"
) -> dict[str, Any]:
    data = {"object": "user", "id": user_id, "email": "ada@foo-corp.com", "email_verified": True,
            "first_name": first_name, "last_name": "Lovelace", "profile_picture_url": None}  # fmt: skip
    return _wrap(event_type, seconds, data, None)


def org_membership(event_type: str, seconds: float, *, role: str = "member", status: str = "active") -> dict[str, Any]:
    data = {"object": "organization_membership", "id": "om_01HQMIRROR", "user_id": "user_01HQMIRROR",
            "organization_id": ORG, "role": {"slug": role}, "status": status}  # fmt: skip
    return _wrap(event_type, seconds, data, None)
