"""Tests for shared/envelope.py: every WorkOS sample parses, each error reason, and created_at leniency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.envelope import Envelope, issued_at_ms, parse_created_at, parse_envelope
from shared.errors import EnvelopeError
from tests.fixtures import WORKOS_SAMPLES

EVENTS = WORKOS_SAMPLES

PROPERTY = settings(database=None, deadline=None)

ORIGINAL = datetime(2021, 6, 25, 19, 7, 33, 155_000, tzinfo=UTC)

# file → (id, type, created_at, object, context keys or None)
SAMPLES: dict[str, tuple[str, str, datetime | None, str | None, set[str] | None]] = {
    "connection.activated.body": (
        "event_01J44T8116Q5M0RYCFA6KWNXN9",
        "connection.activated",
        ORIGINAL,
        None,
        None,
    ),
    "connection.deactivated.json": (
        "wh_01FMXKE185HQ2DQ84BH33HMF99",
        "connection.deactivated",
        datetime(2021, 11, 20, 10, 15, 23, 713_000, tzinfo=UTC),
        None,
        None,
    ),
    "dsync.activated.json": ("event_01FKJ843CVE8F7BXQSPFH0M53V", "dsync.activated", ORIGINAL, None, set()),
    "dsync.deleted.json": ("event_03FKJ843CVE8F7BXQSPFH0M53V", "dsync.deleted", ORIGINAL, None, set()),
    "dsync.group.user_added.json": (
        "wh_01FMV8XH3S04J3G8QP9DABQSKX",
        "dsync.group.user_added",
        None,
        None,
        None,
    ),
    "dsync.user.created.json": ("wh_123", "dsync.user.created", ORIGINAL, None, None),
    "dsync.user.updated.docs-example.json": (
        "event_07FKJ843CVE8F7BXQSPFH0M53V",
        "dsync.user.updated",
        datetime(2023, 4, 28, 20, 5, 31, 93_000, tzinfo=UTC),
        "event",
        None,
    ),
    "dsync.user.updated.schema.json": (
        "event_01EHZNVPK3SFK441A1RGBFSHRT",
        "dsync.user.updated",
        datetime(2026, 1, 15, 12, 0, tzinfo=UTC),
        "event",
        {
            "google_analytics_client_id",
            "google_analytics_sessions",
            "ajs_anonymous_id",
            "client_id",
            "actor",
            "previous_attributes",
        },
    ),
}


def _reason(body: bytes) -> str:
    with pytest.raises(EnvelopeError) as caught:
        parse_envelope(body)
    return caught.value.reason


def _envelope(**fields: Any) -> bytes:
    return orjson.dumps({"id": "event_1", "event": "dsync.user.created", "data": {}} | fields)


# --- the WorkOS samples -------------------------------------------------------------------------------


def test_every_sample_file_is_in_the_table() -> None:
    on_disk = {path.name for path in EVENTS.iterdir() if path.suffix in {".json", ".body"}}

    assert on_disk == set(SAMPLES)


@pytest.mark.parametrize("name", list(SAMPLES))
def test_sample_parses(name: str) -> None:
    event_id, event_type, created_at, kind, context_keys = SAMPLES[name]
    raw = (EVENTS / name).read_bytes()

    envelope = parse_envelope(raw)

    assert envelope.id == event_id
    assert envelope.type == event_type
    assert envelope.data == orjson.loads(raw)["data"]
    assert envelope.created_at == created_at
    assert envelope.object == kind
    if context_keys is None:
        assert envelope.context is None
    else:
        assert envelope.context is not None
        assert set(envelope.context) == context_keys


def test_envelope_is_frozen() -> None:
    envelope = parse_envelope(_envelope())

    with pytest.raises(AttributeError):
        envelope.id = "event_2"  # type: ignore[misc]


# --- error reasons ------------------------------------------------------------------------------------

NOT_JSON = {
    "empty": b"",
    "truncated": b'{"id": "event_1", "event": ',
    "trailing_garbage": _envelope() + b"x",
    "invalid_utf8": b'{"id": "event_\xff", "event": "x", "data": {}}',
    "lone_surrogate_bytes": b'{"id": "\xed\xa0\x80", "event": "x", "data": {}}',
    "latin1": '{"id": "événement", "event": "x", "data": {}}'.encode("latin-1"),
    "too_deep": b"[" * 2000 + b"]" * 2000,
}


@pytest.mark.parametrize("body", list(NOT_JSON.values()), ids=list(NOT_JSON))
def test_not_json(body: bytes) -> None:
    assert _reason(body) == "not_json"


@pytest.mark.parametrize("body", [b"[]", b'"event"', b"42", b"null", b"true"])
def test_not_object(body: bytes) -> None:
    assert _reason(body) == "not_object"


@pytest.mark.parametrize("value", [None, "", 123, ["event_1"], {"id": "x"}])
def test_missing_id(value: object) -> None:
    assert _reason(_envelope(id=value)) == "missing_id"
    assert _reason(b'{"event": "x", "data": {}}') == "missing_id"


@pytest.mark.parametrize("value", [None, "", 1, ["dsync.user.created"]])
def test_missing_event(value: object) -> None:
    assert _reason(_envelope(event=value)) == "missing_event"
    assert _reason(b'{"id": "event_1", "data": {}}') == "missing_event"


@pytest.mark.parametrize("value", [None, [], "{}", 0])
def test_bad_data(value: object) -> None:
    assert _reason(_envelope(data=value)) == "bad_data"
    assert _reason(b'{"id": "event_1", "event": "x"}') == "bad_data"


def test_reasons_are_checked_in_order() -> None:
    assert _reason(b"{}") == "missing_id"
    assert _reason(b'{"id": "e"}') == "missing_event"


# --- optional fields ----------------------------------------------------------------------------------


def test_minimal_envelope_has_no_optional_fields() -> None:
    assert parse_envelope(_envelope()) == Envelope(
        id="event_1", type="dsync.user.created", data={}, created_at=None, object=None, context=None
    )


@pytest.mark.parametrize("value", [1, None, ["event"], {"kind": "event"}])
def test_object_kept_only_when_a_string(value: object) -> None:
    assert parse_envelope(_envelope(object=value)).object is None


@pytest.mark.parametrize("value", ["ctx", 1, None, [{}]])
def test_context_kept_only_when_an_object(value: object) -> None:
    assert parse_envelope(_envelope(context=value)).context is None


@pytest.mark.parametrize("value", ["yesterday", 1722443701539, None, "", {"at": "now"}])
def test_unusable_created_at_does_not_reject_the_event(value: object) -> None:
    assert parse_envelope(_envelope(created_at=value)).created_at is None


# --- created_at ---------------------------------------------------------------------------------------

EXPECTED = datetime(2024, 7, 31, 16, 35, 1, 539_000, tzinfo=UTC)
CREATED_AT_FORMS = {
    "z": "2024-07-31T16:35:01.539Z",
    "zero_offset": "2024-07-31T16:35:01.539+00:00",
    "positive_offset": "2024-07-31T22:05:01.539+05:30",
    "negative_offset": "2024-07-31T09:35:01.539-07:00",
    "compact_offset": "2024-07-31T22:05:01.539+0530",
    "naive": "2024-07-31T16:35:01.539",
    "space_naive": "2024-07-31 16:35:01.539",
    "space_z": "2024-07-31 16:35:01.539Z",
    "microseconds": "2024-07-31T16:35:01.539000Z",
    "surrounding_space": " 2024-07-31T16:35:01.539Z\n",
}


@pytest.mark.parametrize("text", list(CREATED_AT_FORMS.values()), ids=list(CREATED_AT_FORMS))
def test_created_at_forms_become_aware_utc(text: str) -> None:
    parsed = parse_created_at(text)

    assert parsed == EXPECTED
    assert parsed is not None
    assert parsed.tzinfo is UTC


def test_docs_example_non_iso_form() -> None:
    assert parse_created_at("2023-04-28 20:05:31.093") == datetime(2023, 4, 28, 20, 5, 31, 93_000, tzinfo=UTC)


def test_whole_seconds() -> None:
    assert parse_created_at("2024-07-31T16:35:01Z") == EXPECTED.replace(microsecond=0)


UNPARSABLE = {
    "word": "yesterday",
    "empty": "",
    "hour_24": "2024-07-31T24:00:00Z",
    "month_13": "2024-13-01T00:00:00Z",
    "unix_string": "1722443701539",
    "overflows_to_year_0": "0001-01-01T00:00:00+01:00",
    "overflows_past_9999": "9999-12-31T23:59:59-01:00",
    "very_long": "2024-07-31T16:35:01.539Z" + " " * 100,
}


@pytest.mark.parametrize("text", list(UNPARSABLE.values()), ids=list(UNPARSABLE))
def test_unparsable_created_at_is_none(text: str) -> None:
    assert parse_created_at(text) is None


@pytest.mark.parametrize("value", [None, 1722443701, 1722443701.5, True, b"2024-07-31T16:35:01Z", [], {}])
def test_non_string_created_at_is_none(value: object) -> None:
    assert parse_created_at(value) is None


@PROPERTY
@given(st.text(max_size=80))
def test_parse_created_at_never_raises(text: str) -> None:
    parsed = parse_created_at(text)

    assert parsed is None or parsed.tzinfo is UTC


@PROPERTY
@given(st.datetimes(timezones=st.just(UTC)))
def test_isoformat_round_trips(moment: datetime) -> None:
    assert parse_created_at(moment.isoformat()) == moment
    assert parse_created_at(moment.isoformat().replace("+00:00", "Z")) == moment


# --- issued_at_ms -------------------------------------------------------------------------------------

SIGNED_AT_MS = 1_722_443_701_539


def test_issued_at_falls_back_to_signing_time() -> None:
    assert issued_at_ms(None, SIGNED_AT_MS) == SIGNED_AT_MS


def test_issued_at_uses_created_at_when_present() -> None:
    assert issued_at_ms(EXPECTED, 0) == 1_722_443_701_539
    assert issued_at_ms(ORIGINAL, SIGNED_AT_MS) == 1_624_648_053_155


def test_issued_at_treats_naive_as_utc_and_respects_offsets() -> None:
    offset = timezone(timedelta(hours=5, minutes=30))

    assert issued_at_ms(EXPECTED.replace(tzinfo=None), 0) == 1_722_443_701_539
    assert issued_at_ms(EXPECTED.astimezone(offset), 0) == 1_722_443_701_539


def test_issued_at_truncates_sub_millisecond_and_handles_pre_epoch() -> None:
    assert issued_at_ms(EXPECTED.replace(microsecond=539_999), 0) == 1_722_443_701_539
    assert issued_at_ms(datetime(1969, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC), 0) == -1


def test_envelope_created_at_feeds_issued_at() -> None:
    envelope = parse_envelope(_envelope(created_at="2024-07-31T16:35:01.539Z"))

    assert issued_at_ms(envelope.created_at, 0) == 1_722_443_701_539


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not_json"),
        (b"[]", "not_object"),
        (b'{"event": "x", "data": {}}', "missing_id"),
        (b'{"id": "e", "data": {}}', "missing_event"),
        (b'{"id": "e", "event": "x", "data": []}', "bad_data"),
    ],
)
def test_parse_routing_rejects_as_parse_envelope_does(body: bytes, reason: str) -> None:
    from shared.envelope import parse_routing

    with pytest.raises(EnvelopeError) as routed:
        parse_routing(body)
    with pytest.raises(EnvelopeError) as parsed:
        parse_envelope(body)
    assert routed.value.reason == parsed.value.reason == reason


def test_parse_routing_returns_id_type_and_document() -> None:
    from shared.envelope import parse_routing

    body = b'{"id": "event_1", "event": "dsync.user.created", "data": {"id": "u"}, "created_at": "garbage"}'
    event_id, event_type, document = parse_routing(body)
    assert (event_id, event_type, document["data"]) == ("event_1", "dsync.user.created", {"id": "u"})
