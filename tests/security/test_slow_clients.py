"""Slow and oversized clients against a real `python -m receiver` (uvicorn, httptools, uvloop).

A trickling client costs the receiver a file descriptor and a few kilobytes, not a thread: while hundreds of them
hang, signed deliveries are still answered promptly, and the bounds uvicorn lacks on its own (receiver/http_protocol.py;
"Slow and oversized clients" in docs/security.md) hold.
"""

from __future__ import annotations

import asyncio
import resource
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from receiver.server import LIMIT_CONCURRENCY
from tests.receiver.conftest import event_body, signed_headers
from tests.security.live_receiver import LiveReceiver, live_receiver, read_response

SLOW_CLIENTS = 200  # half trickle their headers, half their body
TRICKLE_TICKS = 4  # seconds of attack: one byte per connection per tick
PROMPT_S = 1.0
WEBHOOK = "/webhooks/workos"

pytestmark = pytest.mark.slow


@pytest.fixture
def receiver(redis_url: str, tmp_path: Path) -> Iterator[LiveReceiver]:
    with live_receiver(tmp_path, redis_url) as live:
        yield live
        assert live.alive(), live.output()
        assert live.stop() == 0, live.output()


def _open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


@asynccontextmanager
async def _connections(port: int, count: int) -> AsyncIterator[list[asyncio.StreamWriter]]:
    opened = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(count)))
    writers = [writer for _, writer in opened]
    try:
        yield writers
    finally:
        for writer in writers:
            writer.close()
        await asyncio.gather(*(writer.wait_closed() for writer in writers), return_exceptions=True)


async def test_trickling_clients_do_not_delay_signed_deliveries(receiver: LiveReceiver) -> None:
    fds_before = _open_fds(receiver.process.pid)
    async with _connections(receiver.port, SLOW_CLIENTS) as writers:
        # Given 100 connections that send their head one byte per second, and 100 that send a complete head
        # declaring 1000 body bytes, then the body one byte per second
        slow_heads, slow_bodies = writers[: SLOW_CLIENTS // 2], writers[SLOW_CLIENTS // 2 :]
        for writer in slow_heads:
            writer.write(b"POST /webhooks/workos HTTP/1.1\r\nhost: x\r\nx-slow: ")
        for writer in slow_bodies:
            writer.write(b"POST /webhooks/workos HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n{")
        ticked = asyncio.Event()

        async def trickle() -> None:
            for _ in range(TRICKLE_TICKS):
                for writer in writers:
                    writer.write(b"a")
                await asyncio.gather(*(writer.drain() for writer in writers))
                ticked.set()
                await asyncio.sleep(1.0)  # the attack's pace: one byte per connection per second

        attack = asyncio.create_task(trickle())

        # When signed deliveries arrive while they hang, each on a new connection
        latencies: list[float] = []
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=receiver.url, timeout=5.0, limits=limits) as client:
            for n in range(3 * TRICKLE_TICKS):
                if n % 3 == 0:
                    await ticked.wait()  # spread over the attack: three deliveries per tick
                    ticked.clear()
                body = event_body(f"event_slowloris_{n}")
                started = time.perf_counter()
                response = await client.post(WEBHOOK, content=body, headers=signed_headers(body))
                latencies.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
            fds_during = _open_fds(receiver.process.pid)
        await attack

    # Then every delivery was answered promptly, and the slow clients cost a descriptor each, no more
    assert max(latencies) < PROMPT_S, latencies
    assert fds_during >= fds_before + SLOW_CLIENTS
    deadline = time.monotonic() + 10.0
    while _open_fds(receiver.process.pid) > fds_before + 5:  # their close is seen, their requests end
        assert time.monotonic() < deadline, "the receiver kept the slow clients' sockets"
        await asyncio.sleep(0.05)


async def test_a_client_that_stops_mid_body_is_dropped_when_it_goes_away(receiver: LiveReceiver) -> None:
    # Given a delivery whose body stops halfway
    body = event_body("event_half_sent")
    headers = "".join(f"{name}: {value}\r\n" for name, value in signed_headers(body).items())
    _, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
    head = f"POST {WEBHOOK} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n{headers}\r\n"
    writer.write(head.encode() + body[: len(body) // 2])
    await writer.drain()

    # When it disconnects, then the receiver neither answered nor stored it, and carries on
    writer.close()
    await writer.wait_closed()
    async with httpx.AsyncClient(base_url=receiver.url, timeout=5.0) as client:
        metrics = await _eventually_in_metrics(client, 'outcome="disconnected",source="workos"} 1.0')
    assert 'hookyard_receiver_requests_total{outcome="accepted",source="workos"} 0.0' in metrics


async def _eventually_in_metrics(client: httpx.AsyncClient, needle: str) -> str:
    deadline = time.monotonic() + 5.0
    while True:
        metrics = (await client.get("/metrics")).text
        if needle in metrics:
            return metrics
        assert time.monotonic() < deadline, f"{needle} never appeared"
        await asyncio.sleep(0.05)


# --- what uvicorn does not bound on its own (docs/security.md, "Slow and oversized clients") -------------------


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        assert hard == resource.RLIM_INFINITY or hard >= needed, f"need {needed} descriptors, hard limit {hard}"
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


async def test_idle_connections_up_to_the_concurrency_limit_do_not_starve_deliveries(
    redis_url: str, tmp_path: Path
) -> None:
    # Both processes hold one descriptor per connection; the receiver inherits the raised limit.
    _raise_fd_limit(LIMIT_CONCURRENCY + 256)
    with live_receiver(tmp_path, redis_url) as receiver:
        # Given as many connections as the concurrency limit, open and silent (no byte sent, ever)
        async with _connections(receiver.port, LIMIT_CONCURRENCY):
            # When a signed delivery arrives, then it is stored
            body = event_body("event_behind_idle_sockets")
            async with httpx.AsyncClient(base_url=receiver.url, timeout=5.0) as client:
                response = await client.post(WEBHOOK, content=body, headers=signed_headers(body))
            assert response.status_code == 200, response.text


def test_an_oversized_request_head_is_refused(receiver: LiveReceiver) -> None:
    # Given a request whose one header goes on for 1 MiB (a real head is under 1 KiB)
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=3.0) as sock:
        sock.sendall(b"POST /webhooks/workos HTTP/1.1\r\nhost: x\r\nx-padding: ")
        try:
            for _ in range(16):
                sock.sendall(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused and closed early: what we want

        # Then the receiver refuses it (431 or 400) instead of buffering on, waiting for its end
        answer = read_response(sock)
    assert answer is not None and answer.status in (400, 431), answer
