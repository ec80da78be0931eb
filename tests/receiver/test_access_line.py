"""Tests for receiver/access_line.py: the template renders the very line structlog would write, as valid JSON."""

from __future__ import annotations

import io
import re
import time
from typing import Any

import orjson
import pytest

from receiver.access_line import AccessLine
from receiver.access_log import _fields
from receiver.outcome import RequestRecord
from shared.logging import configure_logging, get_logger

LOGGER = "hookyard.receiver.access"
ISO_UTC_MICROS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def _record(**fields: Any) -> RequestRecord:
    record = RequestRecord(fields.pop("source", "workos"), 1_722_443_701_539)
    for name, value in fields.items():
        setattr(record, name, value)
    return record


RECORDS = {
    "accepted": _record(
        outcome="accepted",
        status=200,
        duration_s=0.000_812_5,
        body_bytes=1262,
        event_id="event_01J3X8QY5Z",
        event_type="dsync.user.created",
        signed_at_ms=1_722_443_701_000,
    ),
    "store unavailable": _record(
        outcome="store_unavailable", status=503, duration_s=2.0, body_bytes=10, event_id="e", event_type="t"
    ),
    "invalid signature": _record(outcome="invalid_signature", status=401, reason="mismatch", body_bytes=3),
    "invalid event": _record(outcome="invalid_event", status=400, reason="not_json", duration_s=1e-9),
    "unknown source": _record(source="unknown", outcome="unknown_source", status=404),
    "disconnected": _record(outcome="disconnected"),
    "cancelled": _record(),
    "strings that need escaping": _record(
        outcome="accepted",
        status=200,
        event_id='ev"il\\\n\u2028',
        event_type="ü.\x00.type",
    ),
}


def _structlog_line(record: RequestRecord) -> dict[str, Any]:
    """What the structlog path of receiver/access_log.py writes for `record`."""
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    try:
        get_logger(LOGGER).info("request", **_fields(record))
    finally:
        configure_logging("info", "json")
    line: dict[str, Any] = orjson.loads(stream.getvalue())
    return line


@pytest.mark.parametrize("record", RECORDS.values(), ids=RECORDS.keys())
def test_the_line_is_the_structlog_line(record: RequestRecord) -> None:
    rendered = AccessLine(LOGGER).render(record, time.time_ns())

    line = orjson.loads(rendered)
    expected = _structlog_line(record)
    assert ISO_UTC_MICROS.match(line.pop("timestamp"))
    expected.pop("timestamp")
    assert line == expected
    assert b"\n" not in rendered  # one line, whatever the event id holds


def test_the_timestamp_is_the_render_time_in_utc() -> None:
    line = AccessLine(LOGGER)
    record = RECORDS["accepted"]
    # 2024-07-31T16:35:01.539123Z, then a later microsecond of the same second, then the next second
    first = orjson.loads(line.render(record, 1_722_443_701_539_123_456))
    same_second = orjson.loads(line.render(record, 1_722_443_701_999_999_999))
    next_second = orjson.loads(line.render(record, 1_722_443_702_000_001_000))

    assert first["timestamp"] == "2024-07-31T16:35:01.539123Z"
    assert same_second["timestamp"] == "2024-07-31T16:35:01.999999Z"
    assert next_second["timestamp"] == "2024-07-31T16:35:02.000001Z"


def test_the_duration_is_in_milliseconds_to_the_microsecond() -> None:
    line = orjson.loads(AccessLine(LOGGER).render(_record(duration_s=0.012_345_6), 0))

    assert line["duration_ms"] == 12.346
    assert isinstance(orjson.loads(AccessLine(LOGGER).render(_record(duration_s=0.0), 0))["duration_ms"], float)
