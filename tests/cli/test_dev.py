"""`hookyard dev`: its checks before starting anything, and the real thing — Redis, receiver and worker started,
an event accepted, and Ctrl-C stopping them all."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest
import structlog

from processor.cli import dev, main
from processor.cli.devstate import is_redis_server, load_or_create_secret
from processor.devtools.embedded_redis import EmbeddedRedis, free_port


def wait_until(predicate: Callable[[], bool], timeout_s: float = 20.0, what: str = "condition") -> None:
    """Poll `predicate` until it holds; fail the test at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    # `dev` configures logging for the process, onto a stderr that pytest closes after the test.
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


# --- hookyard dev: the parts that need no child processes -----------------------------------------------------


def test_dev_secret_is_created_private_and_reused(env: Path) -> None:
    path = env / "webhook-secret"

    first, created = load_or_create_secret(path)
    again, created_again = load_or_create_secret(path)

    assert (created, created_again) == (True, False)
    assert first == again
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_dev_redis_port_is_stable_while_free(env: Path) -> None:
    env.mkdir()
    port = free_port()
    (env / "redis.port").write_text(f"{port}\n")

    assert dev._redis_port(env) == port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        assert dev._redis_port(env) != port


def test_dev_validates_settings_before_starting_anything(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOOKYARD_LOG_LEVEL", "chatty")

    assert main(["dev"]) == 2

    assert capsys.readouterr().err.startswith("hookyard: configuration error: HOOKYARD_LOG_LEVEL: ")
    assert not (env / "redis").exists()


def test_dev_refuses_a_port_in_use(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]

        assert main(["dev", "--port", str(port)]) == 1

    assert f"127.0.0.1:{port} is in use" in capsys.readouterr().err
    assert not (env / "redis").exists()


def test_dev_refuses_to_start_a_second_redis_on_the_same_data(
    env: Path, redis_server: EmbeddedRedis, capsys: pytest.CaptureFixture[str]
) -> None:
    env.mkdir()
    (env / "redis.pid").write_text(f"{redis_server.pid}\n")

    assert main(["dev"]) == 1

    assert f"redis-server (pid {redis_server.pid})" in capsys.readouterr().err


# --- hookyard dev: the real thing -----------------------------------------------------------------------------


def process_gone(pid: int) -> bool:
    """True once neither `pid` nor any process of the group it led exists (zombies count as gone)."""
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        pass
    else:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def started_children(log_file: Path) -> dict[str, int]:
    """`name:pid` → pid of every process a supervisor started: dev's own children and the worker's workers."""
    children: dict[str, int] = {}
    for line in log_file.read_bytes().splitlines():
        if line.startswith(b"{"):
            entry = orjson.loads(line)
            if entry.get("event") in ("child.started", "child.restarted"):
                children[f"{entry['child']}:{entry['pid']}"] = entry["pid"]
    return children


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_dev_runs_redis_receiver_and_worker_and_ctrl_c_stops_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a clean environment: no Redis, no secret, a free port
    data_dir = tmp_path / "data"
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKYARD_", "WORKOS_")) and k != "REDIS_URL"}
    environ.update(
        HOOKYARD_DATA_DIR=str(data_dir),
        HOOKYARD_PORT=str(port),
        HOOKYARD_WORKER_METRICS_PORT=str(free_port()),
        HOOKYARD_LOG_FORMAT="json",
    )
    stdout, stderr = tmp_path / "dev.out", tmp_path / "dev.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        dev = subprocess.Popen(
            [sys.executable, "-m", "processor.cli", "dev"], cwd=tmp_path, env=environ, stdout=out, stderr=err
        )
    health = f"http://127.0.0.1:{port}/healthz"
    try:
        # When `hookyard dev` starts: Then the receiver answers
        with httpx.Client(timeout=1.0) as client:

            def healthy() -> bool:
                if dev.poll() is not None:
                    pytest.fail(f"hookyard dev exited {dev.returncode}:\n{stdout.read_text()}\n{stderr.read_text()}")
                try:
                    return client.get(health).status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(healthy, timeout_s=60, what="GET /healthz to answer 200")
        redis_pid = int((data_dir / "redis.pid").read_text())
        wait_until(lambda: len(started_children(stderr)) >= 3, what="receiver, worker and its worker-0 logged")

        # And an event sent with the secret dev created is accepted
        for name in list(os.environ):
            if name.startswith(("HOOKYARD_", "WORKOS_")) or name == "REDIS_URL":
                monkeypatch.delenv(name)
        monkeypatch.setenv("HOOKYARD_DATA_DIR", str(data_dir))
        monkeypatch.setenv("HOOKYARD_PORT", str(port))
        assert main(["send", "dsync.user.created"]) == 0, capsys.readouterr()

        # When Ctrl-C reaches it
        dev.send_signal(signal.SIGINT)
        dev.wait(timeout=90)
    finally:
        if dev.poll() is None:
            dev.kill()
            dev.wait()
        for pid in started_children(stderr).values():
            if not process_gone(pid):
                os.killpg(pid, signal.SIGKILL)

    # Then everything is gone: no orphan receiver, worker or redis-server
    assert dev.returncode == 0, stderr.read_text()
    children = started_children(stderr)
    assert {name.split(":")[0] for name in children} == {"receiver", "worker", "ingester", "worker-0"}
    assert all(process_gone(pid) for pid in children.values()), children
    assert process_gone(redis_pid)
    assert not (data_dir / "redis.pid").exists()
    # And the secret it created is private and was shown once, with how to use it
    secret_file = data_dir / "webhook-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    banner = stdout.read_text()
    assert banner.count(secret_file.read_text().strip()) == 1
    assert "hookyard send" in banner
    assert f"http://127.0.0.1:{port}/webhooks/workos" in banner
    assert (data_dir / "redis.port").read_text().strip().isdigit()


def test_dev_with_an_unreachable_redis_says_so_in_one_line_and_starts_nothing(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")

    assert main(["dev", "--port", str(free_port())]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("hookyard dev: cannot reach Redis at redis://127.0.0.1:1/0")
    assert captured.err.count("\n") == 1
    assert not (env / "dev.json").exists()


@contextmanager
def running_dev(tmp_path: Path, data_dir: Path, port: int) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`hookyard dev` in a process of its own, healthy on `port`; yields it and its stderr file, and stops it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKYARD_", "WORKOS_")) and k != "REDIS_URL"}
    environ.update(
        HOOKYARD_DATA_DIR=str(data_dir),
        HOOKYARD_PORT=str(port),
        HOOKYARD_WORKER_METRICS_PORT=str(free_port()),
        HOOKYARD_LOG_FORMAT="json",
    )
    stdout, stderr = tmp_path / "dev.out", tmp_path / "dev.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "processor.cli", "dev"], cwd=tmp_path, env=environ, stdout=out, stderr=err
        )
    try:
        with httpx.Client(timeout=1.0) as client:

            def healthy() -> bool:
                if process.poll() is not None:
                    output = f"{stdout.read_text()}\n{stderr.read_text()}"
                    pytest.fail(f"hookyard dev exited {process.returncode}:\n{output}")
                try:
                    return client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(healthy, timeout_s=60, what="GET /healthz to answer 200")
        yield process, stderr
        process.send_signal(signal.SIGINT)
        process.wait(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in started_children(stderr).values():
            if not process_gone(pid):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError, ValueError):
            redis_pid = int((data_dir / "redis.pid").read_text())
            if is_redis_server(redis_pid):
                os.kill(redis_pid, signal.SIGKILL)


def sends(capsys: pytest.CaptureFixture[str]) -> Callable[[], bool]:
    def accepted() -> bool:
        code = main(["send", "dsync.user.created"])
        capsys.readouterr()
        return code == 0

    return accepted


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_dev_restarts_its_redis_when_it_dies_and_other_terminals_find_the_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given `hookyard dev` on a port of its own, and a shell that knows only its data directory
    data_dir = tmp_path / "data"
    port = free_port()
    for name in list(os.environ):
        if name.startswith(("HOOKYARD_", "WORKOS_")) or name == "REDIS_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOOKYARD_DATA_DIR", str(data_dir))
    with running_dev(tmp_path, data_dir, port) as (dev_process, stderr):
        # Then it recorded its addresses, and `hookyard send` finds the receiver from them
        recorded = orjson.loads((data_dir / "dev.json").read_bytes())
        assert recorded["receiver"] == f"http://127.0.0.1:{port}/webhooks/workos"
        assert recorded["pid"] == dev_process.pid
        assert recorded["redis"].startswith("redis://127.0.0.1:")
        assert main(["send", "dsync.user.created"]) == 0, capsys.readouterr()

        # When its redis-server is killed
        first = int((data_dir / "redis.pid").read_text())
        os.kill(first, signal.SIGKILL)

        # Then a new one runs and is recorded (the record is written just after it answers, so wait for it)
        def restarted() -> bool:
            with contextlib.suppress(FileNotFoundError, ValueError):
                second = int((data_dir / "redis.pid").read_text())
                return second != first and is_redis_server(second)
            return False

        wait_until(restarted, timeout_s=30, what="a new redis-server to be recorded in redis.pid")
        # And a signed delivery is accepted again, on the same port
        wait_until(sends(capsys), timeout_s=30, what="a delivery to be accepted again")
        assert orjson.loads((data_dir / "dev.json").read_bytes())["redis"] == recorded["redis"]
        said = stderr.read_text()
        assert said.count("embedded Redis exited (signal SIGKILL); restarted on port") == 1, said

    # And once it has stopped, its record is gone: nothing points at a stack that is not there
    assert dev_process.returncode == 0
    assert not (data_dir / "dev.json").exists()
