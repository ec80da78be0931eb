"""Redis memory per event, measured: events admitted through the real ingest and runner code (`processor.testing`'s
Harness, pointed at the bench's Redis), `INFO memory` read while they are all pending, after every handler finished,
and after the dedupe and retention windows dropped what they hold; `MEMORY USAGE` of every key says which kind of
key the bytes are in. A least-squares fit over the cases gives the sizing formula of docs/operations.md.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import redis

from bench.fit import Fit, least_squares
from bench.plan import Plan
from processor.event import Event
from processor.handlers import Registry
from processor.testing import Harness
from shared import keys
from shared.wire import QueuedEvent, encode_message

__all__ = [
    "CASES",
    "DEDUPE_TTL_S",
    "HANDLED_TERMS",
    "KINDS",
    "PENDING_TERMS",
    "RETENTION_S",
    "CaseResult",
    "MemoryCase",
    "RedisMemory",
    "RedisMemoryBench",
    "case_messages",
    "handled_terms",
    "key_kind",
    "pending_terms",
    "sized_body",
]


@dataclass(frozen=True, slots=True)
class MemoryCase:
    body_bytes: int
    handlers: int
    events_per_key: int  # events per resource: each (resource, handler) is one ordered pair


#: One factor at a time around the first case (400 B bodies, 2 handlers, 4 events per resource: the shape of
#: issue 9's 200,000 events over 50,000 resources), plus two corners, so every fitted term is pinned down.
CASES: tuple[MemoryCase, ...] = (
    MemoryCase(400, 2, 4),
    MemoryCase(1300, 2, 4),
    MemoryCase(4000, 2, 4),
    MemoryCase(400, 1, 4),
    MemoryCase(400, 5, 4),
    MemoryCase(400, 2, 1),
    MemoryCase(400, 2, 50),
    MemoryCase(1300, 5, 1),
    MemoryCase(4000, 1, 50),
)

#: Kept apart (the defaults are both 7 days) so each key's TTL says which window holds it.
DEDUPE_TTL_S = 6 * 86400.0
RETENTION_S = 7 * 86400.0

#: Key kinds by the name after the shard tag (`{hy:N}:<kind>:…`), in the order the report lists them.
KINDS: dict[str, str] = {
    "seen": "dedupe marker `seen:<source>:<event id>` (string: body digest + routes)",
    "ev": "archive `ev:<source>:<event id>` (hash: raw body + metadata)",
    "events": "events index `events` (zset per shard)",
    "got": "admitted marker `got:<pair id>:<event id>` (string)",
    "pair": "pair hash `pair:<pair id>` (handler, key, last position, lease)",
    "q": "queue `q:<pair id>` (zset)",
    "st": "delivery state `st:<pair id>` (hash)",
    "body": "pending messages `body:<pair id>` (hash)",
    "due": "due index `due` (zset per shard)",
    "backlog": "backlog index `stats:backlog:<handler>` (zset per shard)",
    "stats": "counters `stats` (hash per shard)",
    "inbox": "inbox and its lease",
    "other": "anything else",
}

HANDLED_TERMS = ("per event", "per body byte", "per handler", "per pair")
PENDING_TERMS = ("per event", "per body byte", "per handler", "per body byte and handler", "per pair")

_SOURCE = "workos"
_EVENT_TYPE = "dsync.user.updated"
_DIRECTORY = "directory_01HXYZ6RKB8JA0PQ5Z4F4QW6DS"
_ORGANIZATION = "org_01HXYZ6RKBJ8G1FQ2W2N8VB0QX"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_INBOX_TAG = keys.INBOX.partition("}")[0] + "}"  # the inbox and its lease share it
_BATCH = 500  # messages put in the inbox per ingest round: the ingester's batch size


@dataclass(frozen=True, slots=True)
class CaseResult:
    case: MemoryCase
    events: int
    pairs: int  # distinct (resource, handler)
    pending_per_event: float  # used_memory growth per event with every call pending
    handled_per_event: float  # … after every handler completed
    left_bytes: int  # … after the windows dropped what they hold: in total, not per event
    left_keys: int
    pending_kinds: dict[str, float] = field(default_factory=dict)  # MEMORY USAGE per event, by key kind
    handled_kinds: dict[str, float] = field(default_factory=dict)
    held_for: dict[str, str] = field(default_factory=dict)  # key kind -> what bounds its life (from its TTL)
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class RedisMemory:
    cases: list[CaseResult]
    handled: Fit  # bytes per event after handling, over HANDLED_TERMS
    pending: Fit  # bytes per event while pending, over PENDING_TERMS
    dedupe_ttl_s: float = DEDUPE_TTL_S
    retention_s: float = RETENTION_S


def handled_terms(case: MemoryCase, pairs_per_event: float) -> list[float]:
    return [1.0, float(case.body_bytes), float(case.handlers), pairs_per_event]


def pending_terms(case: MemoryCase, pairs_per_event: float) -> list[float]:
    return [1.0, float(case.body_bytes), float(case.handlers), float(case.body_bytes * case.handlers), pairs_per_event]


def key_kind(name: bytes | str) -> str:
    """The kind of a Hookyard key (a key of `KINDS`) from its name."""
    text = name.decode(errors="replace") if isinstance(name, bytes) else name
    if text.startswith(_INBOX_TAG):
        return "inbox"
    if not text.startswith("{hy:"):
        return "other"
    rest = text.partition("}:")[2]
    if rest.startswith("stats:backlog:"):
        return "backlog"
    kind = rest.split(":", 1)[0]
    return kind if kind in KINDS else "other"


def sized_body(event_id: str, resource: str, created: datetime, size: int) -> bytes:
    """A `dsync.user.updated` body of exactly `size` bytes (padded in `custom_attributes`)."""
    data: dict[str, object] = {
        "object": "directory_user",
        "id": resource,
        "directory_id": _DIRECTORY,
        "organization_id": _ORGANIZATION,
        "state": "active",
        "custom_attributes": {"notes": ""},
    }
    document = {
        "object": "event",
        "id": event_id,
        "event": _EVENT_TYPE,
        "data": data,
        "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    bare = len(orjson.dumps(document))
    if size < bare:
        raise ValueError(f"a body needs at least {bare} bytes")
    data["custom_attributes"] = {"notes": "x" * (size - bare)}
    return orjson.dumps(document)


def _ulid(rng: random.Random, at_ms: int) -> str:
    # The shape of WorkOS ids (26 Crockford base-32 characters after the prefix): key names cost their length.
    stamp = "".join(_CROCKFORD[(at_ms >> (5 * i)) & 31] for i in range(9, -1, -1))
    return stamp + "".join(rng.choice(_CROCKFORD) for _ in range(16))


def case_messages(case: MemoryCase, events: int, received_ms: int, seed: int = 9) -> Iterator[bytes]:
    """`events` inbox messages over `events / events_per_key` users, created in increasing order before receipt."""
    rng = random.Random(seed)
    resources = max(1, events // case.events_per_key)
    first_ms = received_ms - 10 * events - 1000
    users = [f"directory_user_{_ulid(rng, first_ms)}" for _ in range(resources)]
    for i in range(events):
        created_ms = first_ms + 10 * i
        event_id = f"event_{_ulid(rng, created_ms)}"
        created = datetime.fromtimestamp(0, UTC) + timedelta(milliseconds=created_ms)
        body = sized_body(event_id, users[i % resources], created, case.body_bytes)
        yield encode_message(QueuedEvent(_SOURCE, event_id, _EVENT_TYPE, received_ms, received_ms, body))


class _Calls:
    """A no-op handler that counts its calls (the bench checks every call happened before reading memory)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, event: Event) -> None:
        self.count += 1


class RedisMemoryBench:
    def __init__(self, plan: Plan, redis_url: str, *, progress: Callable[[str], None] | None = None) -> None:
        self.plan = plan
        self.redis_url = redis_url
        self.progress = progress or (lambda message: None)
        self.client = redis.Redis.from_url(redis_url)

    def run(self) -> RedisMemory:
        try:
            results = [self.measure(case, self.plan.memory_events) for case in CASES]
        finally:
            self.client.close()
        handled = least_squares(
            HANDLED_TERMS,
            [handled_terms(r.case, r.pairs / r.events) for r in results],
            [r.handled_per_event for r in results],
        )
        pending = least_squares(
            PENDING_TERMS,
            [pending_terms(r.case, r.pairs / r.events) for r in results],
            [r.pending_per_event for r in results],
        )
        return RedisMemory(results, handled, pending)

    def measure(self, case: MemoryCase, events: int) -> CaseResult:
        started = time.monotonic()
        calls = _Calls()
        registry = Registry()
        for i in range(case.handlers):
            # Handler names of a realistic length: they are in the routes, the pair hashes and the counters.
            registry.register(calls, ("dsync.*",), name=f"bench.memory.handler_{i}", order_by="resource")
        self.client.flushall()
        harness = Harness(registry, redis_url=self.redis_url, reorder_window_s=0, dedupe_ttl_s=DEDUPE_TTL_S,
                          retention_s=RETENTION_S)  # fmt: skip
        try:
            # Warm-up: the scripts load into the server's script cache (which FLUSHALL keeps) before the baseline.
            self._admit(harness, list(case_messages(case, 1, harness.clock(), seed=0)))
            harness.run()
            self.client.flushall()
            calls.count = 0
            base = self._data_memory()
            resources = max(1, events // case.events_per_key)
            self._admit(harness, list(case_messages(case, events, harness.clock())))
            pending = self._data_memory() - base
            pending_kinds = self._usage_by_kind(events)
            harness.run()
            if calls.count != events * case.handlers:
                raise RuntimeError(f"{calls.count} handler calls for {events} events x {case.handlers} handlers")
            handled = self._data_memory() - base
            handled_kinds = self._usage_by_kind(events)
            held_for = self._held_for()
            left_keys = self._drop_windows()
            left = self._data_memory() - base
        finally:
            harness.close()
        result = CaseResult(
            case=case,
            events=events,
            pairs=resources * case.handlers,
            pending_per_event=pending / events,
            handled_per_event=handled / events,
            left_bytes=left,
            left_keys=left_keys,
            pending_kinds=pending_kinds,
            handled_kinds=handled_kinds,
            held_for=held_for,
            seconds=time.monotonic() - started,
        )
        self.progress(
            f"redis memory: {case.body_bytes} B x {case.handlers} handlers, {case.events_per_key} per resource: "
            f"{result.pending_per_event:,.0f} B/event pending, {result.handled_per_event:,.0f} handled"
        )
        return result

    # --- steps ------------------------------------------------------------------------------------------------

    def _admit(self, harness: Harness, messages: list[bytes]) -> None:
        """Through the inbox and the real Ingester, one ingest batch at a time (so the inbox holds nothing when
        memory is read); the wake-ups it reserves are kept for the harness's runner, as `Harness.step` does."""
        for start in range(0, len(messages), _BATCH):
            self.client.rpush(keys.INBOX, *messages[start : start + _BATCH])
            while True:
                result = harness.ingester.ingest_once()
                if result is None or result.read == 0:
                    break
                harness.wakes.extend(result.wake)

    def _data_memory(self) -> int:
        """`used_memory` without client and AOF buffers, which come and go with the traffic, not the data; read
        until it holds still (the keyspace's hash table may be mid-rehash, which serverCron finishes in a tick)."""
        previous: int | None = None
        deadline = time.monotonic() + 3.0
        while True:
            # A command slower than slowlog-log-slower-than (a big admit on a busy machine, the FLUSHALL) keeps its
            # arguments in the slow log: kilobytes that are no data of ours.
            self.client.slowlog_reset()
            info = self.client.info("memory")
            value = int(info["used_memory"]) - sum(
                int(info.get(name, 0))
                for name in ("mem_clients_normal", "mem_clients_slaves", "mem_aof_buffer", "mem_replication_backlog")
            )
            if value == previous or time.monotonic() > deadline:
                return value
            previous = value
            time.sleep(0.1)  # polling interval: one serverCron tick (hz 10) between readings

    def _scan(self) -> list[bytes]:
        return list(self.client.scan_iter(count=1000))

    def _usage_by_kind(self, events: int) -> dict[str, float]:
        """`MEMORY USAGE` (every element counted: SAMPLES 0) summed by key kind, per event."""
        names = self._scan()
        totals: dict[str, int] = {}
        for start in range(0, len(names), 1000):
            chunk = names[start : start + 1000]
            pipe = self.client.pipeline(transaction=False)
            for name in chunk:
                pipe.memory_usage(name, samples=0)
            for name, used in zip(chunk, pipe.execute(), strict=True):
                kind = key_kind(name)
                totals[kind] = totals.get(kind, 0) + int(used or 0)
        return {kind: totals[kind] / events for kind in KINDS if kind in totals}

    def _held_for(self) -> dict[str, str]:
        """What ends each kind of key still present, read from one key's TTL."""
        sample: dict[str, bytes] = {}
        for name in self._scan():
            sample.setdefault(key_kind(name), name)
        held: dict[str, str] = {}
        for kind, name in sample.items():
            ttl_ms = int(self.client.pttl(name))
            if ttl_ms < 0:
                held[kind] = "no TTL"
            elif abs(ttl_ms - DEDUPE_TTL_S * 1000) < 3_600_000:
                held[kind] = "dedupe window"
            elif abs(ttl_ms - RETENTION_S * 1000) < 3_600_000:
                held[kind] = "retention"
            else:
                held[kind] = f"{ttl_ms / 1000:,.0f} s"
        return held

    def _drop_windows(self) -> int:
        """Do what the windows do once they have passed: delete every key with a TTL, and trim each shard's events
        index as the next admission after the retention window trims it. Returns how many keys are left."""
        names = self._scan()
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.pttl(name)
        doomed = [name for name, ttl in zip(names, pipe.execute(), strict=True) if int(ttl) > 0]
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(doomed), 1000):
            pipe.delete(*doomed[start : start + 1000])
        for shard in range(keys.SHARDS):
            pipe.zremrangebyscore(keys.EventKeys(shard, _SOURCE, "").index, "-inf", "+inf")
        pipe.execute()
        return int(self.client.dbsize())
