"""A small HTTP/1.1 load generator (uvloop + httptools) for what wrk cannot do: a fixed offered rate.

Open loop: request i is due at `start + i / rate` whatever happened to the earlier ones, and its latency is
measured from that due time, not from when a connection became free to send it — so a server that stalls
is charged for every request it held up (no coordinated omission). Requests go out over a pool of keep-alive
connections; a request that finds none free waits, and that wait counts. The closed-loop mode (each
connection sends again as soon as it has an answer) is the fallback when wrk is not installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import httptools
import uvloop

from bench.stats import percentile

__all__ = ["LoadResult", "closed_loop", "open_loop"]

#: How long after the last due time outstanding requests may still finish before they count as lost.
_GRACE_S = 10.0

RequestFactory = Callable[[int], bytes]


@dataclass(slots=True)
class LoadResult:
    """What the server answered: latencies (s, sorted), statuses, and what never completed."""

    offered: int = 0
    latencies_s: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    incomplete: int = 0
    elapsed_s: float = 0.0
    completed_in_time: int = 0  # answers that arrived within elapsed_s: what a rate is computed from

    @property
    def completed(self) -> int:
        return len(self.latencies_s)

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def requests_per_s(self) -> float:
        return self.completed_in_time / self.elapsed_s if self.elapsed_s else math.nan

    def latency_ms(self, q: float) -> float:
        """The `q` quantile of latency in ms; requests that never completed count as infinitely slow."""
        if self.incomplete and q > self.completed / (self.completed + self.incomplete):
            return math.inf
        return percentile(self.latencies_s, q) * 1000


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.started_at = 0.0  # when the request in flight was due (open loop) or sent (closed loop)
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport quacks like asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.pool.failed(self)

    def on_message_complete(self) -> None:
        self.busy = False
        self.pool.answered(self, self.parser.get_status_code())

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.pool.lost(self)

    def send(self, request: bytes, started_at: float) -> None:
        assert self.transport is not None
        self.busy = True
        self.started_at = started_at
        self.transport.write(request)


class _Pool:
    def __init__(self, port: int, make_request: RequestFactory, result: LoadResult, *, reissue: bool) -> None:
        self.port = port
        self.make_request = make_request
        self.result = result
        self.reissue = reissue  # closed loop: an answered connection sends the next request at once
        self.idle: deque[_Connection] = deque()
        self.waiting: deque[tuple[int, float]] = deque()  # (request index, due time) with no free connection
        self.outstanding = 0
        self.next_index = 0
        self.limit = math.inf  # closed loop: how many requests to send in all
        self.stopping = False
        self.drained = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    async def connect(self, count: int) -> None:
        for _ in range(count):
            await self._open()

    async def _open(self) -> None:
        _, connection = await self.loop.create_connection(lambda: _Connection(self), "127.0.0.1", self.port)
        self.idle.append(connection)

    def submit(self, index: int, due: float) -> None:
        self.result.offered += 1
        self.outstanding += 1
        if self.idle:
            # FIFO: every connection is used in turn, so none idles past the server's keep-alive timeout.
            self.idle.popleft().send(self.make_request(index), due)
        else:
            self.waiting.append((index, due))

    def answered(self, connection: _Connection, status: int) -> None:
        now = time.perf_counter()
        self.result.latencies_s.append(now - connection.started_at)
        self.result.statuses[status] = self.result.statuses.get(status, 0) + 1
        self._settled(connection, now)

    def failed(self, connection: _Connection) -> None:
        self.result.errors += 1
        if connection.transport is not None:
            connection.transport.close()  # connection_lost settles it

    def lost(self, connection: _Connection) -> None:
        if connection.busy:
            connection.busy = False
            self.result.errors += 1
            self.outstanding -= 1
        if connection in self.idle:
            self.idle.remove(connection)
        if not self.stopping:
            # Replace it: the server closed an idle keep-alive connection, or broke one under load.
            self.loop.create_task(self._replace())
        self._check_drained()

    async def _replace(self) -> None:
        try:
            await self._open()
        except OSError:
            self.result.errors += 1
            return
        self._dispatch_waiting(self.idle.popleft(), time.perf_counter())

    def _settled(self, connection: _Connection, now: float) -> None:
        self.outstanding -= 1
        self._dispatch_waiting(connection, now)
        self._check_drained()

    def _dispatch_waiting(self, connection: _Connection, now: float) -> None:
        if self.waiting:
            index, due = self.waiting.popleft()
            connection.send(self.make_request(index), due)
        elif self.reissue and not self.stopping and self.next_index < self.limit:
            index, self.next_index = self.next_index, self.next_index + 1
            self.result.offered += 1
            self.outstanding += 1
            connection.send(self.make_request(index), now)
        else:
            self.idle.append(connection)

    def _check_drained(self) -> None:
        if self.stopping and self.outstanding == 0:
            self.drained.set()

    async def finish(self, timeout_s: float) -> None:
        self.stopping = True
        self._check_drained()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drained.wait(), timeout_s)
        self.result.incomplete = self.outstanding
        for connection in [*self.idle]:
            if connection.transport is not None:
                connection.transport.close()


async def _open_loop(
    port: int, make_request: RequestFactory, *, rate: float, duration_s: float, connections: int
) -> LoadResult:
    result = LoadResult()
    pool = _Pool(port, make_request, result, reissue=False)
    await pool.connect(connections)
    total = int(rate * duration_s)
    # perf_counter, not loop.time(): uvloop's clock has millisecond steps, as coarse as what we measure.
    start = time.perf_counter() + 0.05
    for index in range(total):
        due = start + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        pool.submit(index, due)
    await pool.finish(_GRACE_S)
    result.elapsed_s = time.perf_counter() - start
    result.completed_in_time = result.completed
    result.latencies_s.sort()
    return result


async def _closed_loop(
    port: int, make_request: RequestFactory, *, duration_s: float | None, total: int | None, connections: int
) -> LoadResult:
    result = LoadResult()
    pool = _Pool(port, make_request, result, reissue=True)
    await pool.connect(connections)
    first = min(connections, total) if total is not None else connections
    pool.limit = total if total is not None else math.inf
    start = time.perf_counter()
    for index in range(first):
        pool.submit(index, start)
    pool.next_index = first
    if duration_s is not None:
        await asyncio.sleep(duration_s)
    else:
        while pool.next_index < pool.limit or pool.outstanding:
            await asyncio.sleep(0.05)  # polling interval until the last answer is in
    result.elapsed_s = time.perf_counter() - start
    result.completed_in_time = result.completed
    await pool.finish(_GRACE_S)
    result.latencies_s.sort()
    return result


def open_loop(
    port: int, make_request: RequestFactory, *, rate: float, duration_s: float, connections: int = 50
) -> LoadResult:
    """Offer `rate` requests/s for `duration_s` to 127.0.0.1:`port`; `make_request(i)` gives request i's bytes."""
    return uvloop.run(_open_loop(port, make_request, rate=rate, duration_s=duration_s, connections=connections))


def closed_loop(
    port: int,
    make_request: RequestFactory,
    *,
    duration_s: float | None = None,
    total: int | None = None,
    connections: int = 50,
) -> LoadResult:
    """Keep `connections` requests in flight (what wrk does) for `duration_s`, or until `total` were answered."""
    if (duration_s is None) == (total is None):
        raise ValueError("give either duration_s or total")
    return uvloop.run(_closed_loop(port, make_request, duration_s=duration_s, total=total, connections=connections))
