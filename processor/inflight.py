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
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from processor.handlers import HandlerSpec
from processor.leases import Lease

__all__ = ["Backlog", "Call", "InFlight"]

RUNNING, FINISHED, TIMED_OUT = "running", "finished", "timed_out"


class Backlog:
    """The pairs of one wake-up not yet started by its thread."""

    __slots__ = ("_lock", "_pids", "busy_since", "shard")

    def __init__(self, shard: int, pids: Iterable[str]) -> None:
        self.shard = shard
        self._pids = deque(dict.fromkeys(pids))  # a wake-up may name a pair twice: run it once
        self._lock = threading.Lock()
        #: Monotonic time the thread started its current pair (None between pairs).
        self.busy_since: float | None = None

    def next(self) -> str | None:
        with self._lock:
            return self._pids.popleft() if self._pids else None

    def take_all(self) -> list[str]:
        with self._lock:
            taken = list(self._pids)
            self._pids.clear()
            return taken

    def __len__(self) -> int:
        return len(self._pids)


class Call:
    """One handler call in flight."""

    __slots__ = ("deadline", "lease", "lock", "loop", "spec", "started", "state", "task")

    def __init__(self, spec: HandlerSpec, lease: Lease, started: float) -> None:
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

    def cancel(self) -> None:
        """Cancel an async handler at its next await (a sync one cannot be stopped)."""
        loop, task = self.loop, self.task
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)


Handoff = Callable[[int, list[str]], None]
Expire = Callable[[Call], None]


class InFlight:
    """The calls and backlogs of this process, and the watchdog rules over them."""

    def __init__(self, *, handoff_after_s: float, handoff: Handoff, expire: Expire) -> None:
        self.handoff_after_s = handoff_after_s
        self._handoff = handoff
        self._expire = expire
        self._calls: set[Call] = set()
        self._backlogs: set[Backlog] = set()
        self._lock = threading.Lock()
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
        with self._lock:
            self._calls.discard(call)
            if not ours:
                self.abandoned -= 1
        return ours

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
                pids = backlog.take_all()
                if pids:
                    self._handoff(backlog.shard, pids)
        for call in calls:
            if now >= call.deadline and call.expire():
                with self._lock:
                    self.abandoned += 1
                call.lease.lost.set()
                call.cancel()
                self._expire(call)
            elif not call.lease.alive(now) and call.state == RUNNING and call.task is not None:
                call.cancel()
