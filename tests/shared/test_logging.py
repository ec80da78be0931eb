"""Library log records (dramatiq, uvicorn, redis) come out as our JSON lines, with their traceback as text."""

from __future__ import annotations

import io
import logging

import orjson

from shared.logging import configure_logging


def test_a_library_exception_keeps_its_traceback() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("dramatiq.worker.WorkerThread").exception("Failed to process message")
    [line] = [orjson.loads(text) for text in out.getvalue().splitlines()]
    assert line["event"] == "Failed to process message"
    assert line["logger_name"] == "dramatiq.worker.WorkerThread"
    assert "Traceback (most recent call last)" in line["exception"]
    assert "ValueError: boom" in line["exception"]
