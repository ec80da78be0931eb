"""uvicorn's httptools protocol with the bounds it lacks against slow and oversized clients.

uvicorn (0.54, httptools) has no deadline for a request head or body, no limit on the size of a head (its
`h11_max_incomplete_event_size` applies to h11 only), and counts idle connections against `limit_concurrency`.
So one client could hold a connection forever by never finishing a request, grow memory without bound with one
endless header (which httptools re-concatenates on the event loop, quadratically), or make every delivery a 503
with `limit_concurrency` silent sockets. This protocol bounds the first two and counts only requests.

Every deadline, the keep-alive one included, is checked by one periodic sweep per server instead of a timer per
connection and request.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

__all__ = ["BODY_TIMEOUT_S", "HEAD_TIMEOUT_S", "MAX_HEAD_BYTES", "SWEEP_INTERVAL_S", "BoundedHttpToolsProtocol"]

#: From a connection's start (or a request's first byte) to the end of its request line and headers.
HEAD_TIMEOUT_S: Final = 10.0
#: From the end of the head to the end of the body: 1 MiB in 30 s is ~35 kB/s, far below any real sender.
BODY_TIMEOUT_S: Final = 30.0
#: A WorkOS request head is under 1 KiB; nginx's default buffers allow 8 KiB per line, 32 KiB in all.
MAX_HEAD_BYTES: Final = 64 * 1024
#: How often deadlines are checked, so they hold to within this much.
SWEEP_INTERVAL_S: Final = 1.0

_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\ncontent-length: 16\r\n"
    b"connection: close\r\n\r\nRequest Timeout."
)
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain\r\ncontent-length: 23\r\n"
    b"connection: close\r\n\r\nRequest head too large."
)

# One deadline check per server, rescheduled while it has connections. A timer per request instead would cost
# ~2 us of libuv handle churn on the hot path; a request here only stores a float.
_sweeps: weakref.WeakKeyDictionary[ServerState, asyncio.TimerHandle] = weakref.WeakKeyDictionary()


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` with a head size limit, head and body deadlines, and a request-only concurrency limit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._request_limit: int | None = self.limit_concurrency
        self._reading_head = True
        self._head_bytes = 0
        # loop.time() by which the head, then the body, must be complete; None when not reading one.
        self._head_deadline: float | None = None
        self._body_deadline: float | None = None
        # loop.time() at which a kept-alive connection that has sent nothing since its last response is closed.
        self._idle_deadline: float | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_deadline = self.loop.time() + HEAD_TIMEOUT_S
        if self.server_state not in _sweeps:
            _sweeps[self.server_state] = self.loop.call_later(SWEEP_INTERVAL_S, _sweep, self.server_state, self.loop)

    def data_received(self, data: bytes) -> None:
        self._idle_deadline = None
        reading_head = self._reading_head
        super().data_received(data)
        # Counted only when the whole chunk was head bytes (it started and ended inside the head): a chunk that
        # also holds the end of a previous body is at most one read, so the bound stays MAX_HEAD_BYTES + 64 KiB.
        if reading_head and self._reading_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_head = True
        self._head_bytes = 0
        if self._head_deadline is None:  # the next request on a kept-alive connection: a fresh head budget
            self._head_deadline = self.loop.time() + HEAD_TIMEOUT_S

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._head_deadline = None
        self._body_deadline = self.loop.time() + BODY_TIMEOUT_S
        # uvicorn answers 503 when connections *or* requests reach limit_concurrency; counting connections lets
        # that many silent sockets refuse every delivery. Requests alone bound the memory bodies take; idle
        # connections are bounded by the head deadline instead. (0 makes uvicorn's check fail, None skips it.)
        if self._request_limit is not None:
            self.limit_concurrency = None if len(self.tasks) < self._request_limit else 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._body_deadline = None
        super().on_message_complete()

    def on_response_complete(self) -> None:
        # uvicorn's own (0.54), except that the keep-alive timeout becomes a deadline for the sweep: uvicorn arms
        # a fresh timer after every response and cancels it on the next request, ~2 us of libuv handle churn
        # per request. The connection closes between `timeout_keep_alive` and one sweep interval later.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        else:
            self._idle_deadline = self.loop.time() + self.timeout_keep_alive

    def check_deadlines(self, now: float) -> None:
        """Close the connection if its head or body is overdue at `now` (loop time)."""
        if self._head_deadline is not None and now >= self._head_deadline:
            self._head_deadline = None
            # A connection that never sent a byte just goes; one stuck mid-head is told why.
            self._refuse(_TIMEOUT if self._head_bytes or self.cycle is not None else b"")
        elif self._body_deadline is not None and now >= self._body_deadline:
            self._body_deadline = None
            # The app owns this request's answer: closing makes its next receive() an http.disconnect.
            self._refuse(b"")
        elif self._idle_deadline is not None and now >= self._idle_deadline:
            self._idle_deadline = None
            self.timeout_keep_alive_handler()

    def _refuse(self, response: bytes) -> None:
        if self.transport.is_closing():
            return
        # Only when no earlier response on this connection is still being written (pipelining).
        if response and (self.cycle is None or self.cycle.response_complete):
            self.transport.write(response)
        self.transport.close()


def _sweep(server_state: ServerState, loop: asyncio.AbstractEventLoop) -> None:
    now = loop.time()
    for connection in list(server_state.connections):
        if isinstance(connection, BoundedHttpToolsProtocol):
            connection.check_deadlines(now)
    if server_state.connections:
        _sweeps[server_state] = loop.call_later(SWEEP_INTERVAL_S, _sweep, server_state, loop)
    else:
        del _sweeps[server_state]
