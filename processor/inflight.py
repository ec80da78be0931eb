"""What this process's threads are doing right now, watched: the handler calls in flight and the pairs of each
wake-up still waiting for their thread.

The watchdog (`InFlight.tick`, run every few hundred milliseconds by the engine) enforces three rules:
- **handoff**: pairs of a wake-up wait behind their thread's current pair for at most `handoff_after_s`; after
  that they are sent on as a new wake-up, for any free thread of any worker;
- **timeout**: a call past its handler's `timeout` is a failed attempt (`HandlerTimeout`), recorded at once; its
  lease is no longer renewed and its pair is free for others. Python cannot stop a thread, so the call is
  *abandoned*: its later writes are fenced, and it is counted until it returns;
- **lease loss**: a call whose lease was lost (or passed its local deadline) is told so through its `Event`, and an
  async handler is cancelled, to keep the window where two runs overlap as short as it can be.

The `Gate` isolates *suspects*: an event whose previous call never reported back (its worker died, or lost the
lease) runs alone in its process, so that if it kills the worker again, no other event is charged an attempt.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from processor.handlers import HandlerSpec
from processor.leases import Lease

__all__ = ["Backlog", "Call", "ExclusiveTurn", "Gate", "InFlight"]

RUNNING, FINISHED, TIMED_OUT = "running", "finished", "timed_out"


class Backlog:
    """The pairs of one wake-up not yet started by its thread."""

    __slots__ = ("_lock", "_pair_ids", "busy_since", "shard")

    def __init__(self, shard: int, pair_ids: Iterable[str]) -> None:
        self.shard = shard
        self._pair_ids = deque(dict.fromkeys(pair_ids))  # a wake-up may name a pair twice: run it once
        self._lock = threading.Lock()
        #: Monotonic time the thread started its current pair (None between pairs).
        self.busy_since: float | None = None

    def next(self) -> str | None:
        with self._lock:
            return self._pair_ids.popleft() if self._pair_ids else None

    def take_all(self) -> list[str]:
        with self._lock:
            taken = list(self._pair_ids)
            self._pair_ids.clear()
            return taken

    def __len__(self) -> int:
        return len(self._pair_ids)


class Call:
    """One handler call in flight, holding a shared or an exclusive slot of the gate until it ends or expires."""

    __slots__ = ("deadline", "gate", "lease", "lock", "loop", "slot", "spec", "started", "state", "task")

    def __init__(self, spec: HandlerSpec, lease: Lease, started: float, gate: Gate, slot: str) -> None:
        self.gate = gate
        self.slot: str | None = slot
        self.spec = spec
        self.lease = lease
        self.started = started
        self.deadline = started + spec.timeout_s
        self.lock = threading.Lock()
        self.state = RUNNING
        # An async handler's task and loop, so the watchdog can cancel it.
        self.loop: asyncio.AbstractEventLoop | None = None
        self.task: asyncio.Task[None] | None = None

    def finish(self) -> bool:
        """The call returned: True if its outcome is still ours to record (it did not time out first)."""
        with self.lock:
            if self.state != RUNNING:
                return False
            self.state = FINISHED
            return True

    def expire(self) -> bool:
        """The call passed its timeout: True if it was still running (the caller records the timeout)."""
        with self.lock:
            if self.state != RUNNING:
                return False
            self.state = TIMED_OUT
            return True

    def release_slot(self) -> None:
        """Give the gate slot back, once (when the call ends, or when it is abandoned after its timeout)."""
        with self.lock:
            slot, self.slot = self.slot, None
        if slot == "shared":
            self.gate.leave_shared()
        elif slot == "exclusive":
            self.gate.leave_exclusive()

    def cancel(self) -> None:
        """Cancel an async handler at its next await (a sync one cannot be stopped)."""
        loop, task = self.loop, self.task
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)


class Gate:
    """Shared entry for ordinary calls, exclusive entry for a suspect's call (writer preference).

    An exclusive holder keeps the others out for at most `hold_s`: a suspect that is merely slow must not stall
    its whole process for longer than a lease.
    """

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self._cond = threading.Condition()
        self._shared = 0
        self._waiting = 0
        self._exclusive_until: float | None = None

    def _closed(self, now: float) -> bool:
        return self._waiting > 0 or (self._exclusive_until is not None and now < self._exclusive_until)

    def try_enter_shared(self) -> bool:
        """Count one more ordinary call, unless a suspect waits or runs (within its hold): then False, at once
        (the caller holds a claim and must not wait with it)."""
        with self._cond:
            if self._closed(time.monotonic()):
                return False
            self._shared += 1
            return True

    def leave_shared(self) -> None:
        with self._cond:
            self._shared -= 1
            self._cond.notify_all()

    def enter_exclusive(self, timeout_s: float) -> bool:
        """Wait until no other call runs here (at most `timeout_s`); True if this thread now runs alone."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._waiting += 1
            try:
                while self._shared > 0 or self._exclusive_until is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                self._exclusive_until = time.monotonic() + self.hold_s
                return True
            finally:
                self._waiting -= 1
                self._cond.notify_all()

    def leave_exclusive(self) -> None:
        with self._cond:
            self._exclusive_until = None
            self._cond.notify_all()


class ExclusiveTurn:
    """An exclusive entry won by a thread, until a `Call` takes it over (or `close` gives it back unused)."""

    __slots__ = ("gate", "handed")

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.handed = False

    def hand_over(self) -> str:
        self.handed = True
        return "exclusive"

    def close(self) -> None:
        if not self.handed:
            self.gate.leave_exclusive()


Handoff = Callable[[int, list[str]], None]
Expire = Callable[[Call], None]


class InFlight:
    """The calls and backlogs of this process, and the watchdog rules over them."""

    def __init__(self, *, handoff_after_s: float, handoff: Handoff, expire: Expire, exclusive_hold_s: float) -> None:
        self.handoff_after_s = handoff_after_s
        self.gate = Gate(exclusive_hold_s)
        self._handoff = handoff
        self._expire = expire
        self._calls: set[Call] = set()
        self._backlogs: set[Backlog] = set()
        self._lock = threading.Condition()  # also notified when a call ends (see `wait_for_live_calls`)
        #: Calls that timed out and have not returned yet: threads this process cannot use.
        self.abandoned = 0

    def add_backlog(self, backlog: Backlog) -> None:
        with self._lock:
            self._backlogs.add(backlog)

    def remove_backlog(self, backlog: Backlog) -> None:
        with self._lock:
            self._backlogs.discard(backlog)

    def start(self, call: Call) -> None:
        with self._lock:
            self._calls.add(call)

    def end(self, call: Call) -> bool:
        """The call returned; True if the caller records its outcome (False: it timed out, already recorded)."""
        ours = call.finish()
        call.release_slot()
        with self._lock:
            self._calls.discard(call)
            if not ours:
                self.abandoned -= 1
            self._lock.notify_all()
        return ours

    def wait_for_live_calls(self, timeout_s: float) -> int:
        """Wait (at most `timeout_s`) until every call still running is an abandoned one; returns how many calls
        that are not abandoned still run then."""
        with self._lock:
            self._lock.wait_for(lambda: len(self._calls) - self.abandoned <= 0, timeout_s)
            return max(0, len(self._calls) - self.abandoned)

    def running(self) -> int:
        with self._lock:
            return len(self._calls)

    def tick(self, now: float | None = None) -> None:
        """Apply the rules once (see the module docstring)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            calls = list(self._calls)
            backlogs = list(self._backlogs)
        for backlog in backlogs:
            since = backlog.busy_since
            if since is not None and now - since >= self.handoff_after_s and len(backlog):
                pair_ids = backlog.take_all()
                if pair_ids:
                    self._handoff(backlog.shard, pair_ids)
        for call in calls:
            if now >= call.deadline and call.expire():
                with self._lock:
                    self.abandoned += 1
                    self._lock.notify_all()
                call.lease.lost = True
                call.release_slot()
                call.cancel()
                self._expire(call)
            elif not call.lease.alive(now) and call.state == RUNNING and call.task is not None:
                call.cancel()
