"""The console's pages over a large store: page time with `Plan.console_events` events indexed (1,000,000 in the
full run), against baselines measured in the same run — a Redis PING round trip, and the same page over an empty
store — so the report gives ratios, not absolute numbers from a noisy machine.

Events are written straight into the event index and the archive (the keys admit_events.lua writes) with
pipelines, which takes seconds instead of the hours ingesting them would. Pages are requested in-process through
Starlette's TestClient: the time is the console's own (its Redis reads and the rendering), without a network hop.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import redis
from starlette.testclient import TestClient

from bench.plan import Plan
from processor.console import build_app
from processor.handlers import Registry
from processor.records import DeadLetter
from processor.routing import Target, encode_routes
from shared import keys
from shared.settings import Settings

__all__ = ["ConsoleBench", "ConsolePages", "PageTiming", "console_section"]

_TYPES = ("dsync.user.created", "dsync.user.updated", "dsync.group.user_added", "connection.activated")
_PIPELINE = 5_000
_ORG = "org_bench_0001"
TIMES = "\N{MULTIPLICATION SIGN}"


@dataclass(frozen=True, slots=True)
class PageTiming:
    name: str
    path: str
    empty_median_ms: float
    empty_p95_ms: float
    full_median_ms: float
    full_p95_ms: float


@dataclass(slots=True)
class ConsolePages:
    events: int
    requests: int
    fill_s: float
    ping_median_ms: float
    ping_p95_ms: float
    pages: list[PageTiming] = field(default_factory=list)


def _event_id(i: int) -> str:
    return f"event_bench_{i:08d}"


def _body(i: int, at_ms: int) -> bytes:
    data = {"id": f"directory_user_{i % 50_000:06d}", "organization_id": _ORG if i % 97 == 0 else "org_other"}
    return orjson.dumps({"id": _event_id(i), "event": _TYPES[i % len(_TYPES)], "data": data, "created_at": at_ms})


def fill(client: redis.Redis, events: int, now_ms: int) -> None:
    """`events` events received over the last `events` seconds (one a second), newest = now; one in ten of them
    also a dead letter of `bench.audit` (100,000 for a million: HOOKYARD_DEAD_LETTER_LIMIT's default)."""
    pipe = client.pipeline(transaction=False)
    for i in range(events):
        at_ms = now_ms - (events - i) * 1000
        source, event_id = "workos", _event_id(i)
        ek = keys.event_keys(source, event_id)
        # The routes ingest records (processor.routing): the one handler, ordered per user.
        routes = encode_routes([Target.of("bench.audit", source, f"directory_user_{i % 50_000:06d}", True)])
        pipe.zadd(ek.index, {f"{source}:{event_id}": at_ms})
        pipe.hset(
            ek.archive,
            mapping={
                "source": source,
                "type": _TYPES[i % len(_TYPES)],
                "received": at_ms,
                "issued": at_ms,
                "signed": at_ms,
                "targets": "bench.audit",
                "routes": routes,
                "raw": _body(i, at_ms),
            },
        )
        if i % 10 == 0:
            _dead_letter(pipe, i, at_ms)
        if (i + 1) % _PIPELINE == 0:
            pipe.execute()
    pipe.execute()


def _dead_letter(pipe: redis.client.Pipeline, i: int, at_ms: int) -> None:
    key = f"directory_user_{i % 50_000:06d}"
    pair = keys.pair_id("bench.audit", "workos", key)
    shard = keys.pair_shard("workos", key)
    record = DeadLetter(
        event_id=_event_id(i),
        handler="bench.audit",
        source="workos",
        ordering_key=key,
        pair=pair,
        shard=shard,
        issued_at_ms=at_ms,
        error_type=("TimeoutError", "RuntimeError", "ValueError")[i % 3],
        error_message="the directory service did not answer",
        attempts=8,
        first_failure_ms=at_ms,
        last_failure_ms=at_ms,
        event_type=_TYPES[i % len(_TYPES)],
        traceback="Traceback (most recent call last):\n  ...\nTimeoutError: the directory service did not answer",
    )
    dk = keys.DeadLetterKeys(shard)
    member = f"{pair}:{_event_id(i)}"
    pipe.zadd(dk.dead, {member: at_ms})
    pipe.hset(dk.records, member, record.encode())


def _timings(call: Callable[[], object], requests: int) -> tuple[float, float]:
    call()  # warm: template compilation, first connection
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.95))]


class ConsoleBench:
    def __init__(self, plan: Plan, redis_url: str, progress: Callable[[str], None]) -> None:
        self.plan = plan
        self.redis_url = redis_url
        self.progress = progress

    def run(self) -> ConsolePages:
        client = redis.Redis.from_url(self.redis_url)
        settings = Settings.from_env(
            {"REDIS_URL": self.redis_url, "HOOKYARD_WORKER_METRICS_PORT": "0"}, require_secret=False
        )
        events, requests = self.plan.console_events, self.plan.console_requests
        try:
            client.flushall()
            now_ms = int(time.time() * 1000)
            middle = events // 2
            middle_cursor = f"{now_ms - (events - middle) * 1000}:workos:{_event_id(middle)}"
            pages = [
                ("overview", "/"),
                ("events, first page", "/events"),
                ("events, a page half-way down (cursor)", f"/events?after={middle_cursor}"),
                ("events by type (1 in 4 match)", "/events?type=dsync.user.updated"),
                ("events of one organization (1 in 97 match)", f"/events?organization={_ORG}"),
                ("one event", f"/events/workos/{_event_id(middle)}"),
                ("search by id", f"/events?id={_event_id(middle)}"),
                ("dead letters (the newest 200, grouped)", "/dead-letters"),
            ]
            with TestClient(build_app(settings, Registry(), sample=False)) as web:

                def get(path: str) -> Callable[[], object]:
                    return lambda: web.get(path, follow_redirects=False)

                ping = _timings(client.ping, requests)
                empty = {path: _timings(get(path), requests) for _, path in pages}
                self.progress(f"console: writing {events:,} events' index and archive entries")
                started = time.monotonic()
                fill(client, events, now_ms)
                fill_s = time.monotonic() - started
                ping_full = _timings(client.ping, requests)
                full = {path: _timings(get(path), requests) for _, path in pages}
            result = ConsolePages(
                events, requests, fill_s, statistics.median([ping[0], ping_full[0]]), max(ping[1], ping_full[1])
            )
            for name, path in pages:
                result.pages.append(PageTiming(name, path, *empty[path], *full[path]))
            return result
        finally:
            # Freed in the background: a synchronous FLUSHALL of a million keys outlasts a socket timeout.
            client.flushall(asynchronous=True)
            client.close()


def console_section(result: ConsolePages | None) -> list[str]:
    """The report's console section."""
    if result is None:
        return []
    ping = result.ping_median_ms
    lines = [
        "## Console pages over a large store",
        "",
        f"`python -m bench --only console`: {result.events:,} events written straight into the event index and "
        f"archive, one in ten also a dead letter ({result.fill_s:.0f} s with pipelines), then each page requested "
        f"{result.requests} times in-process (Starlette's TestClient: the console's Redis reads and rendering, no "
        "network hop). Baselines "
        f"from the same run: a Redis PING round trip (median {ping:.3f} ms, p95 {result.ping_p95_ms:.3f} ms) "
        "and the same page over an empty store.",
        "",
        f"| page | median ms | p95 ms | {TIMES} PING (median) | {TIMES} empty store (median) |",
        "|---|---:|---:|---:|---:|",
    ]
    for page in result.pages:
        lines.append(
            f"| {page.name} | {page.full_median_ms:.1f} | {page.full_p95_ms:.1f} | "
            f"{page.full_median_ms / ping:.0f}{TIMES} | {page.full_median_ms / page.empty_median_ms:.2f}{TIMES} |"
        )
    lines.append("")
    return lines
