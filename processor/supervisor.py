"""A small process supervisor: run named child commands, restart the ones that die, stop them all on a signal.

`hookyard dev` runs the receiver and the worker under it; `python -m processor` its worker processes. Each child
gets its own process group, so a Ctrl-C in the terminal reaches only the supervisor, which then stops every child
exactly once (SIGTERM, then SIGKILL for the whole group and its descendants after a grace period). Child
stdout/stderr are inherited: their logs stream through.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from shared.logging import get_logger

__all__ = ["EXIT_GAVE_UP", "EXIT_STOPPED", "ChildSpec", "Supervisor"]

# What run() returns: stopped on request, or gave up on a child that keeps failing right after its start.
EXIT_STOPPED = 0
EXIT_GAVE_UP = 1

# How often exits are polled when nothing wakes the loop sooner (a stop request wakes it at once).
_POLL_S = 0.05


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """A command to keep running: `argv` under `env` (`None`: the supervisor's own environment)."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None


@dataclass(slots=True)
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    # Exits in a row that came sooner than `stable_after_s` after a start; drives backoff and giving up.
    quick_failures: int = 0
    restart_at: float | None = None


class Supervisor:
    """Start children, restart them with capped exponential backoff, and stop them all on SIGINT/SIGTERM.

    `run()` blocks until `stop()` is called (or a handled signal arrives), then terminates every child and
    returns `EXIT_STOPPED`; if one child exits `give_up_after` times in a row within `stable_after_s` of its
    start, it stops everything and returns `EXIT_GAVE_UP` instead of restarting forever.
    """

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        grace_s: float = 10.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 5.0,
        stable_after_s: float = 10.0,
        give_up_after: int | None = None,
        final_exit_codes: frozenset[int] = frozenset(),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [spec.name for spec in children]
        if len(set(names)) != len(names):
            raise ValueError(f"child names must be unique, got {names}")
        self._children = [_Child(spec) for spec in children]
        self._grace_s = grace_s
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._stable_after_s = stable_after_s
        self._give_up_after = give_up_after
        # Exit codes that say "this would fail the same way again" (a configuration error): no restart.
        self._final_exit_codes = final_exit_codes
        self._clock = clock
        # A stop request may come from a signal handler: it only counts and writes a byte to a pipe (both
        # safe there); the byte wakes the loop from select(). The pipe exists only while run() runs.
        self._stop_requests = 0
        self._wake_r = self._wake_w = -1
        self._pipe_lock = threading.Lock()
        self._log = get_logger("hookyard.supervisor")

    # --- control --------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask `run()` to stop every child and return; asking again during the grace period kills them."""
        self._stop_requests += 1
        # Non-blocking: a signal handler must never wait on a lock its own thread may hold. The lock is only
        # held while run() closes the pipe, and then nobody needs waking.
        if not self._pipe_lock.acquire(blocking=False):
            return
        try:
            if self._wake_w >= 0:
                with contextlib.suppress(BlockingIOError):
                    os.write(self._wake_w, b"\0")
        finally:
            self._pipe_lock.release()

    def pids(self) -> dict[str, int | None]:
        """The pid of each child now running (`None` between a death and its restart)."""
        return {c.spec.name: _pid_if_running(c.process) for c in self._children}

    def restarts(self) -> dict[str, int]:
        return {c.spec.name: c.restarts for c in self._children}

    def run(self) -> int:
        """Start every child and supervise them until stopped; see the class docstring for the result."""
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        try:
            with self._signals_handled():
                for child in self._children:
                    self._start(child)
                result = self._supervise()
                self._terminate_all()
            return result
        finally:
            # Whatever interrupted us (an exception, a KeyboardInterrupt before the handlers were in place),
            # no child outlives the supervisor.
            self._kill_remaining()
            with self._pipe_lock:
                os.close(self._wake_r)
                os.close(self._wake_w)
                self._wake_r = self._wake_w = -1

    # --- the loop -------------------------------------------------------------------------------------------

    def _supervise(self) -> int:
        while not self._stop_requests:
            now = self._clock()
            for child in self._children:
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        self._start(child, restart=True)
                    continue
                if child.process is None or child.process.poll() is None:
                    continue
                if self._exited(child, now):
                    return EXIT_GAVE_UP
            self._wait(self._next_timeout(self._clock()))
        return EXIT_STOPPED

    def _exited(self, child: _Child, now: float) -> bool:
        """Record an unexpected exit and schedule the restart; True if the child is given up on."""
        assert child.process is not None
        exit_code = child.process.returncode
        ran_s = now - child.started_at
        # A child killed by SIGKILL (the OOM killer, an event that kills its worker) is not a start-up crash loop:
        # it gets the first restart delay again, not a growing one, so a poison event cannot starve the fleet.
        killed = exit_code == -signal.SIGKILL
        child.quick_failures = child.quick_failures + 1 if ran_s < self._stable_after_s and not killed else 1
        delay = min(self._backoff_initial_s * 2 ** (child.quick_failures - 1), self._backoff_max_s)
        self._log.warning(
            "child.exited",
            child=child.spec.name,
            pid=child.process.pid,
            exit_code=exit_code,
            signal=_signal_name(exit_code),
            ran_s=round(ran_s, 3),
            restart_in_s=delay,
        )
        # A dead leader takes its process group along: a restart must never run beside the previous run's
        # orphans (two sets of workers on the same queues).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        if exit_code in self._final_exit_codes:
            self._log.error("child.failed_for_good", child=child.spec.name, exit_code=exit_code)
            return True
        if self._give_up_after is not None and child.quick_failures >= self._give_up_after:
            self._log.error(
                "child.gave_up",
                child=child.spec.name,
                failures=child.quick_failures,
                exit_code=exit_code,
            )
            return True
        child.restart_at = now + delay
        return False

    def _next_timeout(self, now: float) -> float:
        due = [c.restart_at - now for c in self._children if c.restart_at is not None]
        return max(0.0, min([_POLL_S, *due]))

    def _wait(self, timeout_s: float) -> None:
        ready, _, _ = select.select([self._wake_r], [], [], timeout_s)
        if ready:
            with contextlib.suppress(BlockingIOError):
                os.read(self._wake_r, 512)

    def _start(self, child: _Child, *, restart: bool = False) -> None:
        spec = child.spec
        # process_group=0: the child leads its own group, out of the terminal's foreground group; its own
        # subprocesses join that group, so a SIGKILL of the group leaves no orphan behind.
        child.process = subprocess.Popen(
            list(spec.argv),
            env=dict(spec.env) if spec.env is not None else None,
            stdin=subprocess.DEVNULL,
            process_group=0,
        )
        child.started_at = self._clock()
        child.restart_at = None
        if restart:
            child.restarts += 1
            self._log.info("child.restarted", child=spec.name, pid=child.process.pid, restarts=child.restarts)
        else:
            self._log.info("child.started", child=spec.name, pid=child.process.pid)

    # --- stopping -------------------------------------------------------------------------------------------

    def _terminate_all(self) -> None:
        running = [c for c in self._children if _pid_if_running(c.process) is not None]
        self._log.info("supervisor.stopping", children=[c.spec.name for c in running], grace_s=self._grace_s)
        # SIGTERM goes to the leader only: a child that manages workers of its own (Dramatiq's CLI does)
        # forwards it, and a second SIGTERM would make those workers abandon their graceful stop.
        for child in self._children:
            if child in running:
                assert child.process is not None
                with contextlib.suppress(ProcessLookupError):
                    child.process.send_signal(signal.SIGTERM)
            elif child.process is not None:
                # Its leader already died: what is left of the group are orphans, killed as on any death.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.process.pid, signal.SIGKILL)
        stop_requests = self._stop_requests
        deadline = self._clock() + self._grace_s
        orphans_warned: set[str] = set()
        while any(_group_alive(c) for c in self._children):
            if self._stop_requests > stop_requests:
                break  # a second Ctrl-C: the user does not want to wait
            now = self._clock()
            if now >= deadline:
                break
            for child in running:
                assert child.process is not None
                if child.process.poll() is not None and child.spec.name not in orphans_warned:
                    # The leader is gone but left processes in its group: nobody forwards the stop to them now.
                    orphans_warned.add(child.spec.name)
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(child.process.pid, signal.SIGTERM)
            self._wait(min(_POLL_S, deadline - now))
        for child in self._children:
            if child.process is not None:
                child.process.poll()
                self._log.info(
                    "child.stopped",
                    child=child.spec.name,
                    pid=child.process.pid,
                    exit_code=child.process.returncode,
                )

    def _kill_remaining(self) -> None:
        killed: list[tuple[str, int]] = []
        for child in self._children:
            process = child.process
            if process is None:
                continue
            if _group_alive(child):
                # Found before the kill, while they still hang below the child: descendants that lead groups
                # of their own (a nested supervisor's workers) are out of reach of the group kill.
                descendants = _descendants(process.pid) if process.poll() is None else []
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                for pid in descendants:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
                killed.append((child.spec.name, process.pid))
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
        # Logged only once every child is gone: this runs on the way out of errors, logging's included.
        for name, pid in killed:
            self._log.warning("child.killed", child=name, pid=pid)

    @contextlib.contextmanager
    def _signals_handled(self) -> Iterator[None]:
        # Signal handlers can only be installed from the main thread; elsewhere (tests) stop() is the way.
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handle(signum: int, frame: FrameType | None) -> None:
            self.stop()

        previous: dict[signal.Signals, Any] = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handle)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def _pid_if_running(process: subprocess.Popen[bytes] | None) -> int | None:
    if process is None or process.poll() is not None:
        return None
    return process.pid


def _signal_name(exit_code: int) -> str | None:
    # Popen reports death by signal N as -N.
    if exit_code >= 0:
        return None
    try:
        return signal.Signals(-exit_code).name
    except ValueError:
        return None


def _group_alive(child: _Child) -> bool:
    """Whether the child or anything it started (its process group) is still running."""
    process = child.process
    if process is None:
        return False
    if process.poll() is None:
        return True
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _descendants(root: int) -> list[int]:
    """Every process below `root`, from Linux's /proc (none found elsewhere: the group kill must do)."""
    below: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue  # exited meanwhile
        # The command name in parentheses may itself contain ") ", so split after the last one.
        parent = int(stat.rsplit(b")", 1)[1].split()[1])
        below.setdefault(parent, []).append(int(entry))
    found: list[int] = []
    pending = [root]
    while pending:
        for pid in below.get(pending.pop(), ()):
            found.append(pid)
            pending.append(pid)
    return found
