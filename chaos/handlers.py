"""The handlers of the chaos run. Each writes its calls to the ledger (chaos/ledger.py).

`chaos.ordered` (per resource) and `chaos.unordered` do a little work for every event. `chaos.fragile` does the same
except on the nemesis's chosen keys: on a *hung* key it sleeps far past its `timeout=`, on the *killer* key it
SIGKILLs its own worker process, on every attempt. It allows few attempts, so those events become dead letters
within the run; its other keys must not notice.

Configured by the run through the environment (this module is a test fixture, imported by the workers):
CHAOS_LEDGER_URL, CHAOS_WORK_MS, CHAOS_TIMEOUT_S, CHAOS_HANG_S, CHAOS_HUNG_KEYS, CHAOS_KILLER_KEYS.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

import redis

from chaos.ledger import IN_FLIGHT, LEDGER, Call, in_flight_marker
from hookyard import Event, handler

ORDERED, UNORDERED, FRAGILE = "chaos.ordered", "chaos.unordered", "chaos.fragile"
HANDLERS = (ORDERED, UNORDERED, FRAGILE)
ORDERED_HANDLERS = (ORDERED, FRAGILE)
FRAGILE_MAX_ATTEMPTS = 3

_WORK_S = float(os.environ.get("CHAOS_WORK_MS", "20")) / 1000
TIMEOUT_S = float(os.environ.get("CHAOS_TIMEOUT_S", "2"))
_HANG_S = float(os.environ.get("CHAOS_HANG_S", "16"))
_HUNG = frozenset(k for k in os.environ.get("CHAOS_HUNG_KEYS", "").split(",") if k)
_KILLER = frozenset(k for k in os.environ.get("CHAOS_KILLER_KEYS", "").split(",") if k)
_client: redis.Redis | None = None


def _ledger() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["CHAOS_LEDGER_URL"])
    return _client


def _start(name: str, event: Event, *, mark: bool = True) -> Call:
    call = Call(
        handler=name,
        event_id=event.id,
        attempt=event.attempt,
        late=event.late,
        pid=os.getpid(),
        started=time.time(),
        issued_ms=round(event.issued_at.timestamp() * 1000),
        resource=str(event.data.get("id", "")),
        state=str(event.data.get("state", "")),
        lease_at_start=event.lease_held(),
    )
    pipe = _ledger().pipeline(transaction=True)
    pipe.rpush(LEDGER, call.line())
    if mark:
        pipe.hset(IN_FLIGHT, in_flight_marker(name, event.id, event.attempt), call.pid)
    pipe.execute()
    return call


def _finish(call: Call, event: Event) -> None:
    done = replace(call, ended=time.time(), lease_at_end=event.lease_held())
    pipe = _ledger().pipeline(transaction=True)
    pipe.rpush(LEDGER, done.line())
    pipe.hdel(IN_FLIGHT, in_flight_marker(call.handler, call.event_id, call.attempt))
    pipe.execute()


def _work(name: str, event: Event) -> None:
    call = _start(name, event)
    # Some work per event (CHAOS_WORK_MS), so pauses and kills land mid-handler.
    time.sleep(_WORK_S)
    _finish(call, event)


@handler("dsync.*", name=ORDERED, max_attempts=20, min_backoff=0.2, max_backoff=2, timeout=TIMEOUT_S)
def ordered(event: Event) -> None:
    _work(ORDERED, event)


@handler("dsync.*", name=UNORDERED, order_by="none", max_attempts=20, min_backoff=0.2, max_backoff=2, timeout=TIMEOUT_S)
def unordered(event: Event) -> None:
    _work(UNORDERED, event)


@handler("dsync.*", name=FRAGILE, max_attempts=FRAGILE_MAX_ATTEMPTS, min_backoff=0.2, max_backoff=1, timeout=TIMEOUT_S)
def fragile(event: Event) -> None:
    resource = str(event.data.get("id", ""))
    if resource in _KILLER:
        _start(FRAGILE, event, mark=False)
        os.kill(os.getpid(), signal.SIGKILL)
    if resource in _HUNG:
        # Far past the timeout: the watchdog records the attempt as failed and abandons this thread.
        _start(FRAGILE, event, mark=False)
        time.sleep(_HANG_S)
        return
    _work(FRAGILE, event)
