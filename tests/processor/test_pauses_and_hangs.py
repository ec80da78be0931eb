"""Tries to break the processor's guarantees on real worker processes: a worker paused (SIGSTOP) for longer than
its lease while its handler runs, Redis paused for longer than the recovery timeout, a call that hangs, and an
event that kills its worker on every attempt (docs/guarantees.md §4 to §6 and §8).

Every check reads one ledger of handler starts and completions, written by the handlers themselves
(tests/fixtures/nemesis_handlers.py), in the order Redis received them.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pytest
import redis

from processor import deadletters
from processor.devtools.embedded_redis import EmbeddedRedis
from shared import keys
from shared.wire import QueuedEvent, encode_message
from tests.fixtures.nemesis_handlers import LEDGER
from tests.processor.test_worker_processes import Processor, _children_with, wait_for

pytestmark = pytest.mark.slow

HANDLERS = ("nemesis.ordered", "nemesis.audit")


@dataclass(frozen=True, slots=True)
class Line:
    phase: str
    handler: str
    event_id: str
    attempt: int
    pid: int
    key: str


def read_ledger(client: redis.Redis) -> list[Line]:
    rows = []
    for raw in client.lrange(LEDGER, 0, -1):
        phase, name, eid, attempt, pid, key, _ = raw.decode().split("|")
        rows.append(Line(phase, name, eid, int(attempt), int(pid), key))
    return rows


def deliver(client: redis.Redis, count: int, users: int, *, prefix: str = "event") -> list[str]:
    """`count` events round-robin over `users` resources, issued one second apart in id order."""
    now = int(time.time() * 1000)
    ids, messages = [], []
    for i in range(count):
        eid = f"{prefix}_{i:05d}"
        created = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1_700_000_000 + i)) + ".000Z"
        body = orjson.dumps(
            {"id": eid, "event": "dsync.user.updated", "data": {"id": f"user_{i % users}"}, "created_at": created}
        )
        messages.append(encode_message(QueuedEvent("workos", eid, "dsync.user.updated", now, now, body)))
        ids.append(eid)
    client.rpush(keys.INBOX, *messages)
    client.rpush(keys.INBOX_WAKE, 1)
    return ids


def completed(rows: list[Line], handler: str) -> set[str]:
    return {r.event_id for r in rows if r.phase == "done" and r.handler == handler}


def violations(rows: list[Line]) -> list[str]:
    """What the guarantees forbid, found in the ledger.

    - a call of an event starting with an attempt number not above every earlier call of it (a stale claim run:
      the next call after a lost lease must say `attempt > 1`);
    - a call starting on a key after a later-issued event of that key completed for the same ordered handler;
    - an event completed twice with the same attempt.
    """
    found = []
    last_attempt: dict[tuple[str, str], int] = {}
    done_max: dict[tuple[str, str], str] = {}
    done_attempts: set[tuple[str, str, int]] = set()
    for r in rows:
        pair = (r.handler, r.event_id)
        if r.phase == "start":
            if r.attempt <= last_attempt.get(pair, 0):
                found.append(f"{r.handler} started {r.event_id} with attempt {r.attempt} after attempt "
                             f"{last_attempt[pair]}")  # fmt: skip
            last_attempt[pair] = max(r.attempt, last_attempt.get(pair, 0))
            later = done_max.get((r.handler, r.key))
            if r.handler == "nemesis.ordered" and later is not None and later > r.event_id:
                found.append(f"{r.handler} started {r.event_id} after {later} of key {r.key} completed")
        else:
            if (r.handler, r.event_id, r.attempt) in done_attempts:
                found.append(f"{r.handler} completed {r.event_id} twice with attempt {r.attempt}")
            done_attempts.add((r.handler, r.event_id, r.attempt))
            key = (r.handler, r.key)
            done_max[key] = max(r.event_id, done_max.get(key, ""))
    return found


def letters(client: redis.Redis) -> list[dict[str, object]]:
    return [letter.record.as_dict() for letter in deadletters.list_letters(client, "dead")]


@pytest.fixture
def started(redis_url: str) -> Iterator[list[Processor]]:
    running: list[Processor] = []
    yield running
    for proc in running:
        proc.stop()


def nemesis(redis_url: str, workers: int, threads: int, **extra: str) -> Processor:
    return Processor(
        redis_url,
        workers=workers,
        extra={
            "HOOKYARD_HANDLERS": "tests.fixtures.nemesis_handlers",
            "HOOKYARD_WORKER_THREADS": str(threads),
            **extra,
        },
    )


def worker_pids(proc: Processor) -> set[int]:
    """The worker processes (not the ingester) the supervisor runs now."""
    parent = proc.process.pid
    return set(_children_with(parent, "processor.worker")) - set(_children_with(parent, "--ingester"))


def running_call(client: redis.Redis, pids: set[int]) -> Line | None:
    """A call that started in one of `pids` and has not completed (yet)."""
    rows = read_ledger(client)
    done = {(r.handler, r.event_id, r.attempt) for r in rows if r.phase == "done"}
    for r in reversed(rows):
        if r.phase == "start" and r.pid in pids and (r.handler, r.event_id, r.attempt) not in done:
            return r
    return None


def test_a_worker_paused_past_its_lease_starts_nothing_stale(
    redis_url: str, redis_client: redis.Redis, started: list[Processor]
) -> None:
    # Given two workers with one thread each, calls of 0.4 s, and a lease of 2 s (recovery timeout 6 s)
    proc = nemesis(redis_url, workers=2, threads=1, NEMESIS_SECONDS="0.4")
    started.append(proc)
    wait_for(lambda: len(worker_pids(proc)) == 2, 30, "both workers")
    workers = worker_pids(proc)
    expected = set(deliver(redis_client, 36, 6))
    # When one worker is frozen in the middle of a handler call for 10 s (five leases), then thawed
    wait_for(lambda: running_call(redis_client, workers) is not None, 30, "a call in flight")
    call = running_call(redis_client, workers)
    assert call is not None
    os.kill(call.pid, signal.SIGSTOP)
    try:
        # Frozen until the other worker has taken the frozen call's event over (its lease lapsed) and run on past
        # it on that key: the moment a stale start would do harm.
        def taken_over() -> bool:
            rows = read_ledger(redis_client)
            return any(r.phase == "start" and r.event_id == call.event_id and r.pid != call.pid for r in rows) and any(
                r.phase == "done" and r.key == call.key and r.event_id > call.event_id for r in rows
            )

        wait_for(taken_over, 30, "the other worker to take the frozen call's key over")
    finally:
        os.kill(call.pid, signal.SIGCONT)
    # Then every event completes for both handlers; the frozen call is the only re-run, and no call starts
    # with a stale attempt or behind a later event of its key
    wait_for(lambda: all(completed(read_ledger(redis_client), h) >= expected for h in HANDLERS), 60, "all events")
    rows = read_ledger(redis_client)
    assert violations(rows) == []
    assert letters(redis_client) == []
    resumed = [r for r in rows if r.phase == "start" and r.attempt > 1]
    assert {(r.handler, r.event_id) for r in resumed} <= {(call.handler, call.event_id)}, resumed


def test_redis_paused_past_the_recovery_timeout_starts_nothing_stale(
    redis_server: EmbeddedRedis, redis_url: str, redis_client: redis.Redis, started: list[Processor]
) -> None:
    # Given two workers with two threads each, busy with calls of 0.3 s
    proc = nemesis(redis_url, workers=2, threads=2, NEMESIS_SECONDS="0.3")
    started.append(proc)
    expected = set(deliver(redis_client, 60, 12))
    wait_for(lambda: len(read_ledger(redis_client)) >= 10, 30, "calls in flight")
    # When Redis is frozen for 8 s (beyond the 6 s recovery timeout) while handlers run
    assert redis_server.pid is not None
    os.kill(redis_server.pid, signal.SIGSTOP)
    try:
        time.sleep(8)  # the outage itself is the fault under test
    finally:
        os.kill(redis_server.pid, signal.SIGCONT)
    # Then everything completes, and no claim that outlived its lease was started afterwards
    wait_for(lambda: all(completed(read_ledger(redis_client), h) >= expected for h in HANDLERS), 90, "all events")
    rows = read_ledger(redis_client)
    assert violations(rows) == []
    assert letters(redis_client) == []


def test_a_hung_call_holds_only_its_own_key(
    redis_url: str, redis_client: redis.Redis, started: list[Processor]
) -> None:
    # Given one worker with four threads, handlers with a 2 s timeout and 3 attempts, and one event whose calls
    # hang forever (both handlers)
    proc = nemesis(redis_url, workers=1, threads=4, NEMESIS_HANG="event_00000", HOOKYARD_MAX_ABANDONED_THREADS="2")
    started.append(proc)
    wait_for(lambda: len(worker_pids(proc)) == 1, 30, "the worker")
    [worker] = worker_pids(proc)
    expected = set(deliver(redis_client, 80, 20))
    others = expected - {"event_00000"}
    other_keys = {eid for eid in expected if int(eid.rsplit("_", 1)[1]) % 20 != 0}  # not user_0's
    started_at = time.monotonic()
    # Then every event of the other keys completes for both handlers, though the hung calls never return (the
    # time it took is reported, not asserted: timing goals belong to `make chaos` and `make bench`); the hung
    # key's later events follow once the hung one is dead-lettered
    wait_for(lambda: all(completed(read_ledger(redis_client), h) >= other_keys for h in HANDLERS), 30, "other keys")
    other_keys_s = time.monotonic() - started_at
    wait_for(lambda: all(completed(read_ledger(redis_client), h) >= others for h in HANDLERS), 60, "other events")
    same_key_s = time.monotonic() - started_at
    # And the hung event becomes a HandlerTimeout dead letter of each handler after its 3 attempts
    wait_for(lambda: len(letters(redis_client)) == 2, 60, "the hung event's dead letters")
    dead = letters(redis_client)
    assert {(d["handler"], d["event_id"], d["error_type"]) for d in dead} == {
        (h, "event_00000", "HandlerTimeout") for h in HANDLERS
    }
    # And the worker whose threads got stuck restarted itself (2 abandoned threads at most)
    wait_for(lambda: len(worker_pids(proc)) == 1, 30, "a worker")
    assert worker not in worker_pids(proc)
    rows = read_ledger(redis_client)
    assert violations(rows) == []
    hung = [r for r in rows if r.event_id == "event_00000"]
    assert all(r.phase == "start" for r in hung) and len(hung) == 6, hung
    print(f"\nhung call: other keys done in {other_keys_s:.1f} s, the hung key's later events in {same_key_s:.1f} s")


def test_an_event_that_kills_its_worker_dead_letters_only_itself(
    redis_url: str, redis_client: redis.Redis, started: list[Processor]
) -> None:
    # Given two workers with two threads each, calls of 50 ms, and one event that kills its worker every time
    proc = nemesis(redis_url, workers=2, threads=2, NEMESIS_SECONDS="0.05", NEMESIS_KILL="event_00007")
    started.append(proc)
    expected = set(deliver(redis_client, 100, 10))
    others = expected - {"event_00007"}
    # Then every other event completes for both handlers
    wait_for(lambda: all(completed(read_ledger(redis_client), h) >= others for h in HANDLERS), 120, "other events")
    # And the killer is the only dead letter (WorkerLost), once its 3 attempts have each killed a worker
    wait_for(lambda: len(letters(redis_client)) == 2, 60, "the killer's dead letters")
    dead = letters(redis_client)
    assert {(d["handler"], d["event_id"], d["error_type"]) for d in dead} == {
        (h, "event_00007", "WorkerLost") for h in HANDLERS
    }
    rows = read_ledger(redis_client)
    assert violations(rows) == []
    killer_starts = [r for r in rows if r.event_id == "event_00007"]
    # Never more starts than attempts allowed (3 per handler), none finished. A start is counted when its claim is
    # taken, and the ledger line is the handler's own first write: when both handlers' calls of the killer ran in
    # one process, the first kill can land before the other call wrote its line, so a line may be missing.
    assert 2 <= len(killer_starts) <= 6 and all(r.phase == "start" for r in killer_starts), killer_starts
    assert {r.handler for r in killer_starts} == set(HANDLERS)
