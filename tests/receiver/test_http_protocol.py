"""Tests for receiver/http_protocol.py: a real uvicorn server in-process, short deadlines, raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from processor.devtools.embedded_redis import free_port
from receiver import http_protocol
from receiver.http_protocol import BoundedHttpToolsProtocol

SHORT_S = 0.3


class EchoApp:
    """Reads the whole body, answers 200 with its length; `gate` (when set) holds answers back."""

    def __init__(self) -> None:
        self.gate: asyncio.Event | None = None
        self.disconnects = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.disconnects += 1
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        if self.gate is not None:
            await self.gate.wait()
        body = b"%d" % size
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(autouse=True)
def short_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_protocol, "HEAD_TIMEOUT_S", SHORT_S)
    monkeypatch.setattr(http_protocol, "BODY_TIMEOUT_S", SHORT_S)
    monkeypatch.setattr(http_protocol, "SWEEP_INTERVAL_S", SHORT_S / 10)


@asynccontextmanager
async def running(
    app: EchoApp, *, limit_concurrency: int | None = None, keep_alive_s: float = 60
) -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=BoundedHttpToolsProtocol,
        lifespan="off",
        log_config=None,
        timeout_keep_alive=keep_alive_s,  # type: ignore[arg-type]  # uvicorn takes any number of seconds
        limit_concurrency=limit_concurrency,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), task
            await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=10)


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """The status line of the next answer (b"" if the connection closed without one), its body read too."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5) if not reader.at_eof() else b""
    if not head:
        return b""
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    await reader.readexactly(length)
    return head.split(b"\r\n")[0]


async def _closed(reader: asyncio.StreamReader) -> bool:
    return await asyncio.wait_for(reader.read(), timeout=5) == b""


def _request(body: bytes = b"{}") -> bytes:
    return b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):  # the server closed first; our late bytes may have met a reset
        await writer.wait_closed()


async def test_a_silent_connection_is_closed_after_the_head_deadline() -> None:
    async with running(EchoApp()) as port:
        reader, writer = await _connect(port)
        assert await _closed(reader)  # nothing sent, nothing answered
        await _close(writer)


async def test_a_head_that_does_not_finish_in_time_gets_408() -> None:
    async with running(EchoApp()) as port:
        reader, writer = await _connect(port)
        writer.write(b"POST / HTTP/1.1\r\nhost: x\r\nx-slow: a")
        first = b""
        # A byte every quarter of the deadline, so the connection is never idle for long: only a deadline on the
        # whole head ends it. Waiting for the answer paces the trickle.
        for _ in range(40):
            try:
                first = await asyncio.wait_for(reader.read(1), timeout=SHORT_S / 4)
                break
            except TimeoutError:
                writer.write(b"a")
        response = first + await asyncio.wait_for(reader.read(), timeout=5)
        assert response.startswith(b"HTTP/1.1 408 ")
        await _close(writer)


async def test_a_body_that_does_not_finish_in_time_closes_the_connection() -> None:
    app = EchoApp()
    async with running(app) as port:
        reader, writer = await _connect(port)
        writer.write(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
        await writer.drain()
        assert await _closed(reader)
        await _close(writer)
    assert app.disconnects == 1  # the app was told the client is gone


async def test_an_oversized_head_gets_431() -> None:
    async with running(EchoApp()) as port:
        reader, writer = await _connect(port)
        writer.write(b"POST / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * (http_protocol.MAX_HEAD_BYTES + 1))
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), timeout=5)
        assert response.startswith(b"HTTP/1.1 431 ")
        await _close(writer)


async def test_a_head_just_under_the_limit_is_served() -> None:
    async with running(EchoApp()) as port:
        reader, writer = await _connect(port)
        padding = b"a" * (http_protocol.MAX_HEAD_BYTES - 200)
        writer.write(b"POST / HTTP/1.1\r\nhost: x\r\nx-big: " + padding + b"\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        assert await _answer(reader) == b"HTTP/1.1 200 OK"
        await _close(writer)


async def test_kept_alive_requests_each_get_their_own_deadlines() -> None:
    async with running(EchoApp()) as port:
        reader, writer = await _connect(port)
        for _ in range(3):
            writer.write(_request())
            await writer.drain()
            assert await _answer(reader) == b"HTTP/1.1 200 OK"
            # Idle between requests past the head deadline: keep-alive (60 s here) governs, not the deadline
            await asyncio.sleep(2 * SHORT_S)
        assert not reader.at_eof()
        await _close(writer)


async def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() -> None:
    async with running(EchoApp(), keep_alive_s=SHORT_S) as port:
        reader, writer = await _connect(port)
        writer.write(_request())
        await writer.drain()
        assert await _answer(reader) == b"HTTP/1.1 200 OK"
        idle_since = asyncio.get_running_loop().time()

        # Then silence: the sweep closes the connection once keep-alive has passed, without an answer
        assert await _closed(reader)
        idle_s = asyncio.get_running_loop().time() - idle_since
        assert SHORT_S <= idle_s < SHORT_S + 1.0
        await _close(writer)


async def test_a_request_in_time_keeps_a_kept_alive_connection_open() -> None:
    async with running(EchoApp(), keep_alive_s=3 * SHORT_S) as port:
        reader, writer = await _connect(port)
        for _ in range(4):
            writer.write(_request())
            await writer.drain()
            assert await _answer(reader) == b"HTTP/1.1 200 OK"
            await asyncio.sleep(2 * SHORT_S)  # idle, but less than keep-alive each time: 4 x 2 > 3 in all
        assert not reader.at_eof()
        await _close(writer)


async def test_a_large_body_sent_promptly_is_served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_protocol, "BODY_TIMEOUT_S", 5.0)
    async with running(EchoApp()) as port:
        reader, writer = await _connect(port)
        writer.write(_request(b"x" * (4 << 20)))
        await writer.drain()
        assert await _answer(reader) == b"HTTP/1.1 200 OK"
        await _close(writer)


async def test_idle_connections_do_not_count_against_the_concurrency_limit() -> None:
    app = EchoApp()
    async with running(app, limit_concurrency=2) as port:
        # Given more idle connections than the limit, a request is still served
        idle = [await _connect(port) for _ in range(5)]
        reader, writer = await _connect(port)
        writer.write(_request())
        await writer.drain()
        assert await _answer(reader) == b"HTTP/1.1 200 OK"

        # But with as many requests in flight as the limit, the next one is refused
        app.gate = asyncio.Event()
        held = [await _connect(port) for _ in range(2)]
        for _, held_writer in held:
            held_writer.write(_request())
            await held_writer.drain()
        await asyncio.sleep(SHORT_S / 3)  # let both requests start
        writer.write(_request())
        await writer.drain()
        assert await _answer(reader) == b"HTTP/1.1 503 Service Unavailable"
        app.gate.set()
        for held_reader, _ in held:
            assert await _answer(held_reader) == b"HTTP/1.1 200 OK"
        for _, other in [*idle, *held, (reader, writer)]:
            await _close(other)
