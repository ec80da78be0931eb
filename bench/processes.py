"""Processes under test: started with `taskset`, logging to a file, waited for, stopped by pid; /proc readings.

Every service gets its own process group so a stop reaches its children too (the processor's workers, uvicorn's
reloader if anyone turns it on) and nothing outlives the run.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "PYTHON",
    "ROOT",
    "Service",
    "child_pids",
    "command_line",
    "cpu_seconds",
    "descendant_pids",
    "display_path",
    "pin",
    "rss_mib",
    "tree_cpu_seconds",
    "wait_for_port",
]

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
_LEVEL = re.compile(r'"level":"(\w+)"')
_EVENT = re.compile(r'"event":"([^"]{1,80})"')


def pin(pid: int, cores: set[int]) -> None:
    """Restrict `pid` (0: this process) to `cores`; a no-op on a machine without them."""
    if _can_pin(cores):
        os.sched_setaffinity(pid, cores)


def wait_for_port(port: int, timeout_s: float = 30.0, *, process: subprocess.Popen[bytes] | None = None) -> None:
    """Return once something accepts TCP connections on 127.0.0.1:`port`."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process {process.pid} exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on port {port} after {timeout_s} s") from None
            time.sleep(0.05)  # polling interval while the server starts


class Service:
    """One process under test: `argv` run from the repository root, optionally pinned to `cores`."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_path: Path,
        *,
        cores: set[int] | None = None,
        shown_env: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.cores = cores
        self.shown_env = shown_env
        prefix = ["taskset", "-c", ",".join(map(str, sorted(cores)))] if cores and _can_pin(cores) else []
        self.argv = [*prefix, *argv]
        self.env = dict(env)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> str:
        """The command line as a person would type it (for the report), with the settings named in `shown_env`."""
        settings = [f"{key}={shlex.quote(self.env[key])}" for key in self.shown_env if key in self.env]
        return " ".join([*settings, shlex.join(display_path(a) for a in self.argv)])

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.process.pid

    def start(self) -> Service:
        with self.log_path.open("ab") as log:
            # The log file, never a pipe: an unread pipe fills up and stalls the server mid-benchmark.
            self.process = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        return self

    def last_error(self) -> str | None:
        """The last line of the log that reports an error (JSON logs: level error or critical)."""
        if not self.log_path.exists():
            return None
        for line in reversed(self.log_path.read_text(errors="replace").splitlines()):
            if '"level":"error"' in line or '"level":"critical"' in line or "Traceback" in line:
                return line[:500]
        return None

    def warnings(self) -> collections.Counter[str]:
        """How often each event was logged at warning level or above (JSON logs), by event name."""
        counts: collections.Counter[str] = collections.Counter()
        if self.log_path.exists():
            for line in self.log_path.read_text(errors="replace").splitlines():
                level = _LEVEL.search(line)
                if level and level[1] in ("warning", "error", "critical"):
                    event = _EVENT.search(line)
                    counts[event[1] if event else "?"] += 1
        return counts

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 20.0, *, graceful: bool = True) -> None:
        """SIGTERM the process group, then SIGKILL it after `timeout_s`; or, not `graceful`, SIGKILL it now
        (for a run whose numbers are taken and whose state is about to be flushed anyway)."""
        process, self.process = self.process, None
        if process is None:
            return
        # Taken first: the worker supervisor puts each worker in a process group of its own, so a worker
        # whose supervisor is killed outlives it unless it is killed by pid.
        descendants = descendant_pids(process.pid)
        if not graceful:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
        elif process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
        _signal_group(process.pid, signal.SIGKILL)
        for pid in descendants:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def display_path(arg: str) -> str:
    """`arg`, relative to the repository root when it is a path inside it (the report shows no home dirs)."""
    if arg.startswith(str(ROOT) + os.sep):
        return os.path.relpath(arg, ROOT)
    return arg


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _can_pin(cores: set[int]) -> bool:
    return cores <= set(range(os.cpu_count() or 1))


def child_pids(parent: int) -> list[int]:
    """Pids whose parent is `parent`, from /proc."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return sorted(children)


def command_line(pid: int) -> list[str]:
    """The argv of `pid` (empty if it has exited)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def descendant_pids(pid: int) -> list[int]:
    """Children of `pid`, their children, and so on, from /proc."""
    found: list[int] = []
    frontier = [pid]
    while frontier:
        children = [child for parent in frontier for child in child_pids(parent)]
        found += children
        frontier = children
    return found


def rss_mib(pid: int) -> float:
    """Resident set size of `pid` in MiB (VmRSS of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time `pid` has used so far (its own threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time used so far by `pid` and every live descendant (a supervisor and its workers, which sit in
    process groups of their own)."""
    total = 0.0
    for member in [pid, *descendant_pids(pid)]:
        with contextlib.suppress(OSError):  # exited while we looked
            total += cpu_seconds(member)
    return total
