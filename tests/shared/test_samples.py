"""Sample WorkOS events: every type builds a well-formed envelope the official SDK accepts, reproducibly."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from workos.events.models.event_schema import EventSchema, EventSchemaUnknown

import processor.devtools.samples
from processor.devtools.samples import EVENT_TYPES, sample_event
from shared.envelope import parse_envelope

EVENT_ID = re.compile(r"^event_[0-9A-HJKMNP-TV-Z]{26}$")
ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
WHEN = datetime(2025, 3, 14, 15, 9, 26, 535_897, tzinfo=UTC)


def resource_of(event: dict[str, Any]) -> str:
    """Where each type keeps the id of the entity it is about (the documented place)."""
    data = event["data"]
    if event["event"].startswith("dsync.group.user_"):
        return str(data["user"]["id"])
    if event["event"].startswith("connection.saml_certificate_"):
        return str(data["connection"]["id"])
    return str(data["id"])


def test_public_surface() -> None:
    assert processor.devtools.samples.__all__ == ["EVENT_TYPES", "sample_event"]


def test_event_types_cover_connections_and_directory_sync() -> None:
    assert len(EVENT_TYPES) == len(set(EVENT_TYPES)) == 15
    assert {t.split(".")[0] for t in EVENT_TYPES} == {"connection", "dsync"}


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_type_builds_a_json_envelope(event_type: str) -> None:
    event = sample_event(event_type, rng=random.Random(7), created_at=WHEN)

    assert list(event) == ["id", "event", "data", "created_at", "object"]
    assert EVENT_ID.match(event["id"])
    assert event["event"] == event_type
    assert event["object"] == "event"
    assert event["created_at"] == "2025-03-14T15:09:26.535Z"
    assert ISO_MS_Z.match(event["created_at"])
    body = orjson.dumps(event)
    assert orjson.loads(body) == event
    envelope = parse_envelope(body)
    assert (envelope.id, envelope.type) == (event["id"], event_type)
    assert envelope.created_at == WHEN.replace(microsecond=535_000)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_the_official_sdk_reads_every_type_as_its_own_model(event_type: str) -> None:
    model = EventSchema.from_dict(sample_event(event_type, rng=random.Random(11)))

    assert not isinstance(model, EventSchemaUnknown)
    assert model.event == event_type


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_resource_id_lands_in_the_documented_place(event_type: str) -> None:
    event = sample_event(event_type, rng=random.Random(1), resource_id="res_pinned")

    assert resource_of(event) == "res_pinned"
    assert resource_of(sample_event(event_type, rng=random.Random(1))) != "res_pinned"


@pytest.mark.parametrize(
    ("event_type", "prefix"),
    [
        ("connection.activated", "conn_"),
        ("connection.saml_certificate_renewed", "conn_"),
        ("dsync.activated", "directory_"),
        ("dsync.user.created", "directory_user_"),
        ("dsync.group.deleted", "directory_group_"),
        ("dsync.group.user_removed", "directory_user_"),
    ],
)
def test_made_up_resource_ids_look_like_workos_ids(event_type: str, prefix: str) -> None:
    resource = resource_of(sample_event(event_type, rng=random.Random(3)))

    assert re.fullmatch(re.escape(prefix) + r"[0-9A-HJKMNP-TV-Z]{26}", resource)


@pytest.mark.parametrize("event_type", ["dsync.user.updated", "dsync.group.deleted", "dsync.group.user_added"])
def test_directory_and_organization_can_be_pinned(event_type: str) -> None:
    event = sample_event(event_type, directory_id="directory_X", organization_id="org_Y")
    data = event["data"]

    objects = [data["user"], data["group"]] if "user" in data else [data]
    for obj in objects:
        assert (obj["directory_id"], obj["organization_id"]) == ("directory_X", "org_Y")
    if "user" in data:
        assert data["directory_id"] == "directory_X"


def test_membership_events_have_no_data_id_and_one_directory() -> None:
    data = sample_event("dsync.group.user_added", rng=random.Random(5))["data"]

    assert "id" not in data
    assert data["user"]["directory_id"] == data["group"]["directory_id"] == data["directory_id"]


def test_certificate_events_name_the_connection_and_the_certificate() -> None:
    data = sample_event("connection.saml_certificate_renewal_required", rng=random.Random(5))["data"]

    assert set(data["connection"]) == {"id", "organization_id", "connection_type"}
    assert data["connection"]["connection_type"].endswith("SAML")
    assert {"certificate_type", "expiry_date", "is_expired"} <= set(data["certificate"])


def test_seeded_rng_makes_events_reproducible() -> None:
    def build(seed: int) -> list[bytes]:
        rng = random.Random(seed)
        return [orjson.dumps(sample_event(t, rng=rng, created_at=WHEN)) for t in EVENT_TYPES]

    assert build(42) == build(42)
    assert build(42) != build(43)


def test_ids_are_distinct_without_a_seed() -> None:
    ids = {sample_event("dsync.user.created")["id"] for _ in range(200)}

    assert len(ids) == 200


def test_event_id_and_created_at_can_be_pinned() -> None:
    naive = datetime(2024, 7, 31, 16, 35, 1, 539_000)
    aware = datetime(2024, 7, 31, 18, 35, 1, 539_000, tzinfo=timezone(timedelta(hours=2)))

    assert sample_event("dsync.deleted", event_id="wh_123")["id"] == "wh_123"
    assert sample_event("dsync.deleted", created_at=naive)["created_at"] == "2024-07-31T16:35:01.539Z"
    assert sample_event("dsync.deleted", created_at=aware)["created_at"] == "2024-07-31T16:35:01.539Z"


def test_event_id_time_part_follows_created_at() -> None:
    # ULID-like: the first 10 characters encode created_at, so ids of later events sort later.
    earlier = sample_event("dsync.user.created", created_at=WHEN)["id"]
    later = sample_event("dsync.user.created", created_at=WHEN + timedelta(milliseconds=1))["id"]

    assert earlier[:16] < later[:16]


def test_user_created_body_is_about_one_point_two_kilobytes() -> None:
    sizes = [len(orjson.dumps(sample_event("dsync.user.created", rng=random.Random(s)))) for s in range(200)]

    assert all(1000 <= size <= 1500 for size in sizes)
    assert 1100 <= sum(sizes) / len(sizes) <= 1350


def test_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown event type 'user\.created'") as caught:
        sample_event("user.created")

    assert all(t in str(caught.value) for t in EVENT_TYPES)


@settings(max_examples=60, deadline=None)
@given(event_type=st.sampled_from(EVENT_TYPES), seed=st.integers(0, 2**32), resource=st.text(min_size=1))
def test_any_seed_and_resource_gives_a_routable_envelope(event_type: str, seed: int, resource: str) -> None:
    event = sample_event(event_type, rng=random.Random(seed), resource_id=resource)

    envelope = parse_envelope(orjson.dumps(event))
    assert envelope.type == event_type
    assert resource_of(event) == resource
