"""The access-log line of one webhook request, rendered as bytes from a template.

The line is the JSON object structlog would write for `request` (the same keys, and the same ISO-8601 UTC
timestamp with microseconds), made without a dict, an encoder call over it or a `datetime`: on the receiver's
hot path that rendering cost more than verifying the signature. Strings go through the JSON encoder (the event
id and type come from the body); the rest are numbers and names the receiver chose.
"""

from __future__ import annotations

import time
from typing import Final

import orjson

from receiver.outcome import RequestRecord

__all__ = ["AccessLine"]

_FIELDS: Final = b'{"source":%b,"outcome":"%b","status":%b,"duration_ms":%.3f,"body_bytes":%d'
_IDENTITY: Final = b',"event_id":%b,"event_type":%b'
_REASON: Final = b',"reason":%b'
_STAMP: Final = b',"event":"request","level":"info","logger_name":%b,"timestamp":"%b%06dZ"}'
# The usual line (an answered request for an identified event, no reason) in one template: one formatting call.
_IDENTIFIED: Final = b'{"source":%b,"outcome":"%b","status":%d,"duration_ms":%.3f,"body_bytes":%d' + _IDENTITY + _STAMP


class AccessLine:
    """Renders `RequestRecord`s as lines of logger `logger_name`, keeping the current second's timestamp text."""

    __slots__ = ("_logger_name", "_second", "_second_text")

    def __init__(self, logger_name: str) -> None:
        self._logger_name = orjson.dumps(logger_name)
        self._second = -1
        self._second_text = b""

    def render(self, record: RequestRecord, now_ns: int) -> bytes:
        """The line for `record`, stamped `now_ns` (Unix time in nanoseconds)."""
        second, nanos = divmod(now_ns, 1_000_000_000)
        if second != self._second:
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)).encode()
            self._second = second
        outcome = (record.outcome or "cancelled").encode()
        if record.event_id is not None and record.reason is None and record.status is not None:
            return _IDENTIFIED % (
                orjson.dumps(record.source),
                outcome,
                record.status,
                record.duration_s * 1000.0,
                record.body_bytes,
                orjson.dumps(record.event_id),
                orjson.dumps(record.event_type),
                self._logger_name,
                self._second_text,
                nanos // 1000,
            )
        status = b"null" if record.status is None else b"%d" % record.status
        line = _FIELDS % (orjson.dumps(record.source), outcome, status, record.duration_s * 1000.0, record.body_bytes)
        if record.event_id is not None:
            line += _IDENTITY % (orjson.dumps(record.event_id), orjson.dumps(record.event_type))
        if record.reason is not None:
            line += _REASON % orjson.dumps(record.reason)
        return line + _STAMP % (self._logger_name, self._second_text, nanos // 1000)
