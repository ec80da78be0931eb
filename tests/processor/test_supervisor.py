"""The supervisor restarts children that die, with capped backoff, and stops all of them (and theirs) on request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from processor.supervisor import ChildSpec, Supervisor

ROOT = Path(__file__).resolve().parents[2]


def wait_until(predicate: Callable[[], bool], timeout_s: float = 20.0, what: str = "condition") -> None:
    """Poll `predicate` until it holds; fail the test at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.01)


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie nobody reaped yet counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def python_child(name: str, code: str) -> ChildSpec:
    return ChildSpec(name, [sys.executable, "-c", textwrap.dedent(code)])


@contextmanager
def supervising(supervisor: Supervisor) -> Iterator[dict[str, Any]]:
    """Run the supervisor in a thread; on exit stop it and join. `outcome["code"]` is run()'s result."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["code"] = supervisor.run()
        except BaseException as exc:  # surfaced in the test thread below
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="supervisor", daemon=True)
    thread.start()
    try:
        yield outcome
    finally:
        supervisor.stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "supervisor did not stop"
        if "error" in outcome:
            raise outcome["error"]


def test_child_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="unique"):
        Supervisor([python_child("a", "pass"), python_child("a", "pass")])


def test_restarts_a_child_that_crashes_with_capped_backoff(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    crash = python_child(
        "crasher",
        f"""
        import sys
        with open({str(starts)!r}, "a") as f:
            f.write("x")
        sys.exit(3)
        """,
    )
    with capture_logs() as logs:
        supervisor = Supervisor([crash], backoff_initial_s=0.01, backoff_max_s=0.04)
        with supervising(supervisor) as outcome:
            wait_until(lambda: starts.exists() and len(starts.read_text()) >= 5, what="five starts")

    assert outcome["code"] == 0
    exited = [e for e in logs if e["event"] == "child.exited"]
    restarted = [e for e in logs if e["event"] == "child.restarted"]
    assert len(exited) >= 4
    assert len(restarted) >= 4
    assert {(e["child"], e["exit_code"]) for e in exited} == {("crasher", 3)}
    assert all(isinstance(e["pid"], int) for e in exited + restarted)
    # Quick failures in a row double the delay up to the cap.
    assert [e["restart_in_s"] for e in exited[:4]] == [0.01, 0.02, 0.04, 0.04]
    assert supervisor.restarts()["crasher"] >= 4


def test_a_child_killed_by_sigkill_restarts_without_a_growing_delay(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    killed = python_child(
        "victim",
        f"""
        import os, signal
        with open({str(starts)!r}, "a") as f:
            f.write("x")
        os.kill(os.getpid(), signal.SIGKILL)
        """,
    )
    with capture_logs() as logs:
        supervisor = Supervisor([killed], backoff_initial_s=0.01, backoff_max_s=0.04)
        with supervising(supervisor):
            wait_until(lambda: starts.exists() and len(starts.read_text()) >= 4, what="four starts")
    delays = [e["restart_in_s"] for e in logs if e["event"] == "child.exited"][:3]
    assert delays == [0.01, 0.01, 0.01]


def test_a_healthy_sibling_is_left_alone(tmp_path: Path) -> None:
    starts = tmp_path / "starts"
    crash = python_child("crasher", f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(1)")
    steady = python_child("steady", "import time; time.sleep(60)")
    supervisor = Supervisor([crash, steady], backoff_initial_s=0.01, backoff_max_s=0.02)
    with supervising(supervisor):
        wait_until(lambda: supervisor.pids()["steady"] is not None, what="steady child")
        steady_pid = supervisor.pids()["steady"]
        wait_until(lambda: starts.exists() and len(starts.read_text()) >= 3, what="three crashes")
        assert supervisor.pids()["steady"] == steady_pid
        assert supervisor.restarts()["steady"] == 0

    assert steady_pid is not None
    assert not alive(steady_pid)


def test_stop_terminates_every_child_and_returns(tmp_path: Path) -> None:
    children = [python_child(f"sleeper-{i}", "import time; time.sleep(60)") for i in range(3)]
    supervisor = Supervisor(children, grace_s=10.0)
    with capture_logs() as logs, supervising(supervisor) as outcome:
        wait_until(lambda: all(supervisor.pids().values()), what="all children started")
        pids = [pid for pid in supervisor.pids().values() if pid is not None]
        started = time.monotonic()

    assert outcome["code"] == 0
    assert time.monotonic() - started < 5, "SIGTERM should have stopped them well before the grace period"
    assert not any(alive(pid) for pid in pids)
    assert not [e for e in logs if e["event"] in ("child.exited", "child.killed")]
    stopped = {e["child"]: e["exit_code"] for e in logs if e["event"] == "child.stopped"}
    assert stopped == {f"sleeper-{i}": -signal.SIGTERM for i in range(3)}


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    stubborn = python_child(
        "stubborn",
        f"""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open({str(ready)!r}, "w").close()
        time.sleep(60)
        """,
    )
    supervisor = Supervisor([stubborn], grace_s=0.3)
    with capture_logs() as logs, supervising(supervisor):
        wait_until(ready.exists, what="child ignoring SIGTERM")
        pid = supervisor.pids()["stubborn"]

    assert pid is not None
    assert not alive(pid)
    assert [e["child"] for e in logs if e["event"] == "child.killed"] == ["stubborn"]


def test_grandchildren_die_with_their_parent_at_stop(tmp_path: Path) -> None:
    # Given a child that starts a process of its own and exits on SIGTERM without stopping it
    grandchild_pid = tmp_path / "grandchild.pid"
    parent = python_child(
        "parent",
        f"""
        import subprocess, sys, time
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(grandchild_pid)!r}, "w").write(str(grandchild.pid))
        time.sleep(60)
        """,
    )
    supervisor = Supervisor([parent], grace_s=0.3)
    with supervising(supervisor):
        wait_until(lambda: grandchild_pid.exists() and grandchild_pid.read_text() != "", what="grandchild")
        pid = int(grandchild_pid.read_text())
        assert alive(pid)
    # When the supervisor stops: Then the whole process group is gone, the orphan included
    wait_until(lambda: not alive(pid), timeout_s=5, what="grandchild reaped")


def test_at_the_deadline_descendants_in_groups_of_their_own_are_killed_too(tmp_path: Path) -> None:
    # Given a nested supervisor: a child whose own child leads another process group, both deaf to SIGTERM
    grandchild_pid = tmp_path / "grandchild.pid"
    deaf = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    nested = python_child(
        "nested",
        f"""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        grandchild = subprocess.Popen([sys.executable, "-c", {deaf!r}], process_group=0)
        open({str(grandchild_pid)!r}, "w").write(str(grandchild.pid))
        time.sleep(60)
        """,
    )
    supervisor = Supervisor([nested], grace_s=0.3)
    with supervising(supervisor):
        wait_until(lambda: grandchild_pid.exists() and grandchild_pid.read_text() != "", what="grandchild")
        pid = int(grandchild_pid.read_text())
    # When the grace period runs out: Then the grandchild is killed along with its parent
    wait_until(lambda: not alive(pid), timeout_s=5, what="grandchild killed")


def test_a_crashed_child_takes_its_own_children_along_before_the_restart(tmp_path: Path) -> None:
    pids_file = tmp_path / "grandchildren"
    parent = python_child(
        "parent",
        f"""
        import subprocess, sys
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open({str(pids_file)!r}, "a") as f:
            f.write(f"{{grandchild.pid}}\\n")
        sys.exit(1)
        """,
    )
    supervisor = Supervisor([parent], backoff_initial_s=0.05, backoff_max_s=0.05)
    with supervising(supervisor):
        wait_until(lambda: pids_file.exists() and len(pids_file.read_text().split()) >= 3, what="three runs")
        first = int(pids_file.read_text().split()[0])
        wait_until(lambda: not alive(first), timeout_s=5, what="first run's orphan killed")


def test_gives_up_on_a_child_that_keeps_failing_at_start() -> None:
    broken = python_child("broken", "raise SystemExit(2)")
    steady = python_child("steady", "import time; time.sleep(60)")
    supervisor = Supervisor([broken, steady], backoff_initial_s=0.01, give_up_after=3)
    with capture_logs() as logs, supervising(supervisor) as outcome:
        wait_until(lambda: "code" in outcome, what="supervisor giving up")

    assert outcome["code"] == 1
    assert [(e["child"], e["failures"]) for e in logs if e["event"] == "child.gave_up"] == [("broken", 3)]
    assert supervisor.pids() == {"broken": None, "steady": None}


def test_a_final_exit_code_stops_everything_without_a_restart() -> None:
    broken = python_child("broken", "raise SystemExit(2)")
    steady = python_child("steady", "import time; time.sleep(60)")
    supervisor = Supervisor([broken, steady], backoff_initial_s=0.01, final_exit_codes=frozenset({2}))
    with capture_logs() as logs, supervising(supervisor) as outcome:
        wait_until(lambda: "code" in outcome, what="supervisor stopping")

    assert outcome["code"] == 1
    assert supervisor.restarts() == {"broken": 0, "steady": 0}
    assert [e["child"] for e in logs if e["event"] == "child.failed_for_good"] == ["broken"]


def test_children_get_their_own_environment(tmp_path: Path) -> None:
    out = tmp_path / "env"
    child = ChildSpec(
        "env",
        [sys.executable, "-c", f"import os; open({str(out)!r}, 'w').write(os.environ['HOOKYARD_X'])"],
        env={**os.environ, "HOOKYARD_X": "from-spec"},
    )
    supervisor = Supervisor([child], backoff_initial_s=1.0)
    with supervising(supervisor):
        wait_until(lambda: out.exists() and out.read_text() == "from-spec", what="child output")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_supervisor_stops_its_children(tmp_path: Path, signum: signal.Signals) -> None:
    # Given a supervisor process (signal handlers need the main thread) running one long child
    child_pid_file = tmp_path / "child.pid"
    script = textwrap.dedent(
        f"""
        import sys
        from processor.supervisor import ChildSpec, Supervisor
        child = ChildSpec("sleeper", [sys.executable, "-c",
            "import os, time; open({str(child_pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"])
        sys.exit(Supervisor([child]).run())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: child_pid_file.exists() and child_pid_file.read_text() != "", what="child started")
        child_pid = int(child_pid_file.read_text())
        # When it gets the signal
        proc.send_signal(signum)
        # Then it stops the child and exits cleanly
        output, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output.decode()
    assert not alive(child_pid)
    assert b"supervisor.stopping" in output
