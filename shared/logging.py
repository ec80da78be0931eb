"""Structured logging for every Hookyard process: JSON lines, or a readable console when attached to a terminal.

Log key/value events (`log.info("event.accepted", event_id=..., outcome=...)`), never an f-string message, a
secret, a signature or a body.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
import structlog

from shared.log_writer import BatchedLineWriter

__all__ = ["configure_logging", "get_logger", "json_line_sink"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


def _orjson_dumps(event: Any, default: Any = None) -> str:
    return orjson.dumps(event, default=default).decode()


def _stdlib_logger_name(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # Records from libraries carry their stdlib logger name under the same key as ours.
    record = event.get("_record")
    if record is not None:
        event.setdefault("logger_name", record.name)
    return event


_batched_writer: BatchedLineWriter | None = None
_generation = 0  # bumped by configure_logging: named loggers re-bind to the new configuration
_batched_active = False
_active_level = logging.INFO


def configure_logging(
    level: str = "info", fmt: str = "auto", stream: TextIO | None = None, *, batched: bool = False
) -> None:
    """Set up structlog (and route stdlib logging through it); `fmt` is auto, json or console.

    `batched` (JSON to stderr only) writes lines in batches instead of one flushed write per line: for the
    receiver's per-request access log (see shared/log_writer.py for the trade-off).
    """
    global _batched_writer, _batched_active, _active_level, _generation
    _generation += 1
    out = stream if stream is not None else sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if use_console
        else structlog.processors.JSONRenderer(serializer=_orjson_dumps)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    factory: Any = structlog.PrintLoggerFactory(file=out)
    final: Any = renderer
    _active_level = _LEVELS[level]
    _batched_active = batched and stream is None and not use_console
    if batched and stream is None and not use_console:
        if _batched_writer is None:
            _batched_writer = BatchedLineWriter(out.fileno())
        writer = _batched_writer
        final = structlog.processors.JSONRenderer(serializer=orjson.dumps)  # bytes: no decode/encode round trip

        def factory(*args: Any) -> BatchedLineWriter:
            return writer

    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            final,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
    # Libraries (uvicorn, dramatiq, redis) log through the stdlib: render their records the same way.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, _stdlib_logger_name],
            # format_exc_info turns a library record's exc_info into its traceback text (JSON cannot hold one).
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *([] if use_console else [structlog.processors.format_exc_info]),
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])


def json_line_sink(name: str, level: str = "info") -> Callable[[dict[str, Any]], None] | None:
    """A fast path for one hot log line: writes `{"event": …, **fields}` as JSON through the batched writer.

    Lines look exactly like the structlog ones (same keys); `None` when logging is not batched JSON or `level`
    is filtered out — the caller then logs through `get_logger(name)` as usual.
    """
    writer = _batched_writer
    if writer is None or not _batched_active or _LEVELS[level] < _active_level:
        return None
    dumps = orjson.dumps
    stamp = {"level": level, "logger_name": name}

    def write(fields: dict[str, Any]) -> None:
        fields.update(stamp)
        fields["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        writer.msg(dumps(fields))

    return write


class _NamedLogger:
    """A named logger that binds itself once per logging configuration.

    structlog's lazy proxy re-binds on every call (so a later `configure_logging` is honoured); that cost is paid
    per log call, even for a filtered-out `debug` on a hot path. This binds once per configuration instead.
    """

    __slots__ = ("_bound", "_generation", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._bound: Any = None
        self._generation = -1

    def _logger(self) -> Any:
        if self._generation != _generation:
            self._bound = structlog.get_logger(logger_name=self._name).bind()
            self._generation = _generation
        return self._bound

    def bind(self, **values: Any) -> Any:
        return self._logger().bind(**values)

    def __getattr__(self, method: str) -> Any:
        return getattr(self._logger(), method)


def get_logger(name: str) -> Any:
    """A named structlog logger (`logger_name=` is on every line), honouring later `configure_logging` calls."""
    return _NamedLogger(name)
