"""`POST /webhooks/{source}`: read the body, verify, parse, durably enqueue, answer — and nothing else.

A 200 means the event is stored in Redis; a failure to store is a 503 the sender retries; bad input is a 4xx,
never a 500. Pure ASGI (no `Request` object) because this is the one hot path of the receiver.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from starlette.types import Receive, Scope, Send

from receiver.json_response import dump_json, send_json
from receiver.metrics import ReceiverMetrics
from receiver.outcome import REQUEST_RECORD, UNKNOWN_SOURCE_LABEL, Outcome, RequestRecord
from receiver.state import ReceiverState
from shared.clock import wall_ms
from shared.envelope import parse_routing
from shared.errors import EnvelopeError, SignatureError, StoreUnavailable
from shared.logging import get_logger
from shared.settings import SourceConfig
from shared.signature import verify_signature
from shared.wire import QueuedEvent, encode_message

__all__ = ["RETRY_AFTER_S", "SIGNATURE_HEADER", "WebhookEndpoint"]

SIGNATURE_HEADER: Final = b"workos-signature"  # ASGI servers lower-case header names
#: How long a sender should wait after a 503 (WorkOS retries with its own backoff regardless).
RETRY_AFTER_S: Final = 5

_LOGGER = "hookyard.receiver.webhook"
_UNKNOWN_SOURCE = dump_json({"error": "unknown_source"})
_TOO_LARGE = dump_json({"error": "body_too_large"})
_METHOD_NOT_ALLOWED = dump_json({"error": "method_not_allowed"})
_STORE_UNAVAILABLE = dump_json({"error": "store_unavailable"})
_INTERNAL_ERROR = dump_json({"error": "internal_error"})
_ALLOW_POST = ((b"allow", b"POST"),)
# After a 413 the rest of the body is unwanted: closing spares us reading (and the sender sending) it.
_CLOSE = ((b"connection", b"close"),)
_RETRY_AFTER = ((b"retry-after", b"%d" % RETRY_AFTER_S),)
_ACCEPTED = b'{"status":"accepted","id":%b}'  # the 200's body around its JSON-encoded event id


class WebhookEndpoint:
    """The webhook endpoint for every configured source; mount at a path with a `{source}` parameter."""

    def __init__(
        self,
        sources: Mapping[str, SourceConfig],
        max_body_bytes: int,
        state: ReceiverState,
        *,
        clock_ms: Callable[[], int] = wall_ms,
    ) -> None:
        self._sources = dict(sources)
        self._max_body_bytes = max_body_bytes
        self._state = state
        self._metrics: ReceiverMetrics = state.metrics
        self._clock_ms = clock_ms

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        source = self._sources.get(scope["path_params"]["source"])
        record = RequestRecord(source.name if source else UNKNOWN_SOURCE_LABEL, self._clock_ms())
        scope[REQUEST_RECORD] = record
        try:
            await self._handle(scope, receive, send, source, record)
        except Exception as exc:
            # Only a bug gets here: every kind of bad input has its own 4xx above. The dispatcher sends this
            # path past Starlette's error middleware, so the endpoint answers 500 itself, once, and logs.
            log = get_logger(_LOGGER)
            log.exception("webhook.unhandled_error", source=record.source, error=type(exc).__name__)
            if record.status is None:
                await _answer(send, record, "internal_error", 500, _INTERNAL_ERROR)
        finally:
            if record.outcome is None:
                record.outcome = "cancelled"
            record.duration_s = time.perf_counter() - started
            self._metrics.observe_request(record)

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        source: SourceConfig | None,
        record: RequestRecord,
    ) -> None:
        if source is None:
            await _answer(send, record, "unknown_source", 404, _UNKNOWN_SOURCE)
            return
        if scope["method"] != "POST":
            await _answer(send, record, "method_not_allowed", 405, _METHOD_NOT_ALLOWED, _ALLOW_POST)
            return

        signature: bytes | None = None
        declared_length: bytes | None = None
        for name, value in scope["headers"]:
            if name == SIGNATURE_HEADER:
                signature = value
            elif name == b"content-length":
                declared_length = value
        limit = self._max_body_bytes
        if declared_length is not None and _declares_more_than(declared_length, limit):
            await _answer(send, record, "too_large", 413, _TOO_LARGE, _CLOSE)
            return

        # Read chunk by chunk and count: a missing or lying Content-Length must not let an unbounded body in.
        body = b""
        chunks: list[bytes] | None = None
        more_body = True
        while more_body:
            message = await receive()
            if message["type"] != "http.request":
                # http.disconnect: the client is gone, there is nobody to answer.
                record.outcome = "disconnected"
                return
            chunk: bytes = message.get("body", b"")
            more_body = message.get("more_body", False)
            record.body_bytes += len(chunk)
            if record.body_bytes > limit:
                await _answer(send, record, "too_large", 413, _TOO_LARGE, _CLOSE)
                return
            if not body:
                body = chunk
            elif chunk:
                if chunks is None:
                    chunks = [body]
                chunks.append(chunk)
        if chunks is not None:
            body = b"".join(chunks)

        now_ms = record.received_at_ms
        try:
            signed_at_ms = verify_signature(
                body,
                signature.decode("latin-1") if signature is not None else None,
                source.secrets_at(now_ms),
                now_ms=now_ms,
                tolerance_ms=int(source.tolerance_s * 1000),
            )
        except SignatureError as exc:
            record.reason = exc.reason
            self._metrics.observe_signature_failure(source.name, exc.reason)
            payload = dump_json({"error": "invalid_signature", "reason": exc.reason})
            await _answer(send, record, "invalid_signature", 401, payload)
            return
        record.signed_at_ms = signed_at_ms

        try:
            event_id, event_type, _ = parse_routing(body)  # the worker parses the rest (created_at) at ingest
        except EnvelopeError as exc:
            record.reason = exc.reason
            payload = dump_json({"error": "invalid_event", "reason": exc.reason})
            await _answer(send, record, "invalid_event", 400, payload)
            return
        record.event_id = event_id
        record.event_type = event_type

        message_bytes = encode_message(
            QueuedEvent(
                source=source.name,
                event_id=event_id,
                event_type=event_type,
                signed_at_ms=signed_at_ms,
                received_at_ms=now_ms,
                raw=body,
            )
        )
        inbox = self._state.inbox
        try:
            if inbox is None:
                raise StoreUnavailable("the receiver is not started")
            await inbox.append(message_bytes, source.name, event_id)
        except StoreUnavailable:
            await _answer(send, record, "store_unavailable", 503, _STORE_UNAVAILABLE, _RETRY_AFTER)
            return
        await _answer(send, record, "accepted", 200, _ACCEPTED % dump_json(event_id))


def _answer(
    send: Send,
    record: RequestRecord,
    outcome: Outcome,
    status: int,
    body: bytes,
    extra_headers: tuple[tuple[bytes, bytes], ...] = (),
) -> Awaitable[None]:
    # A plain function handing back send_json's coroutine: one coroutine less per request than an async wrapper.
    record.outcome = outcome
    record.status = status
    return send_json(send, status, body, extra_headers)


def _declares_more_than(declared_length: bytes, limit: int) -> bool:
    # A malformed value is left to the counting read below rather than rejected here; HTTP servers in front
    # of us (uvicorn's parser included) already refuse it. The digit cap keeps int() cheap on hostile input.
    if not declared_length.isdigit():
        return False
    return len(declared_length) > 18 or int(declared_length) > limit
