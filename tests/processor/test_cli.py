"""The `hookyard` command: `send` signs what the official SDK verifies; `dev` runs everything and stops cleanly."""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import structlog
from workos import WorkOSClient

from processor import cli
from processor.cli import main
from shared.embedded_redis import EmbeddedRedis, free_port
from shared.samples import EVENT_TYPES, sample_event
from tests.conftest import SAMPLES, TEST_SECRET

WHEN = datetime(2025, 6, 1, 12, 0, 0, 123_000, tzinfo=UTC)


def wait_until(predicate: Callable[[], bool], timeout_s: float = 20.0, what: str = "condition") -> None:
    """Poll `predicate` until it holds; fail the test at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.02)


# --- a stand-in receiver that checks signatures with the official SDK -----------------------------------------


@dataclass
class Delivery:
    body: bytes
    signature: str
    verified: bool


@dataclass
class StubReceiver:
    url: str
    secret: str
    status: int = 200
    deliveries: list[Delivery] = field(default_factory=list)


@pytest.fixture
def stub_receiver() -> Iterator[StubReceiver]:
    with WorkOSClient(api_key="sk_test_unused") as workos:
        server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
        stub = StubReceiver(url=f"http://127.0.0.1:{server.server_port}/webhooks/workos", secret=TEST_SECRET)
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                signature = self.headers.get("WorkOS-Signature", "")
                try:
                    workos.webhooks.verify_header(
                        event_body=body, event_signature=signature, secret=stub.secret, tolerance=180
                    )
                    verified = True
                except ValueError:
                    verified = False
                with lock:
                    stub.deliveries.append(Delivery(body, signature, verified))
                status = stub.status if verified else 401
                answer = orjson.dumps({"status": "accepted" if status == 200 else "rejected"})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        server.RequestHandlerClass = Handler
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="stub-receiver", daemon=True)
        thread.start()
        try:
            yield stub
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)


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


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean Hookyard environment (nothing inherited) with the data directory in tmp; returns that directory."""
    for name in list(os.environ):
        if name.startswith(("HOOKYARD_", "WORKOS_")) or name == "REDIS_URL":
            monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("HOOKYARD_DATA_DIR", str(data_dir))
    monkeypatch.chdir(tmp_path)
    return data_dir


def deterministic_samples(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], dict[str, Any]]:
    rng = random.Random(1234)

    def build(event_type: str) -> dict[str, Any]:
        return sample_event(event_type, rng=rng, created_at=WHEN)

    monkeypatch.setattr(cli, "sample_event", build)
    return lambda event_type: sample_event(event_type, rng=random.Random(1234), created_at=WHEN)


# --- hookyard send --------------------------------------------------------------------------------------------


def test_send_posts_a_sample_the_official_sdk_verifies(
    env: Path,
    stub_receiver: StubReceiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)
    expected = deterministic_samples(monkeypatch)("dsync.user.created")

    code = main(["send", "dsync.user.created", "--url", stub_receiver.url])

    assert code == 0
    [delivery] = stub_receiver.deliveries
    assert delivery.verified
    assert delivery.body == orjson.dumps(expected)
    assert delivery.signature.startswith("t=")
    assert capsys.readouterr().out == f'200 {expected["id"]} {{"status":"accepted"}}\n'


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_send_any_event_type(
    event_type: str, env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)

    assert main(["send", event_type, "--url", stub_receiver.url]) == 0
    [delivery] = stub_receiver.deliveries
    assert delivery.verified
    assert orjson.loads(delivery.body)["event"] == event_type


def test_send_file_sends_the_bytes_verbatim(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Pretty-printed, non-ASCII and a trailing newline: any re-encoding would change the bytes.
    source = (SAMPLES / "dsync.group.user_added.json").read_bytes().replace(b"Hadley", "Hädley".encode())
    body_file = env.parent / "event.json"
    body_file.write_bytes(source + b"\n")
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)

    assert main(["send", "--file", str(body_file), "--url", stub_receiver.url]) == 0

    [delivery] = stub_receiver.deliveries
    assert delivery.body == source + b"\n"
    assert delivery.verified
    assert capsys.readouterr().out.startswith("200 wh_01FMV8XH3S04J3G8QP9DABQSKX ")


def test_send_count_sends_distinct_events(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)

    assert main(["send", "dsync.group.user_added", "--count", "4", "--url", stub_receiver.url]) == 0

    assert len(stub_receiver.deliveries) == 4
    assert all(d.verified for d in stub_receiver.deliveries)
    ids = [orjson.loads(d.body)["id"] for d in stub_receiver.deliveries]
    assert len(set(ids)) == 4
    assert [line.split()[:2] for line in capsys.readouterr().out.splitlines()] == [["200", i] for i in ids]


def test_send_defaults_to_the_configured_host_and_port(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)
    monkeypatch.setenv("HOOKYARD_HOST", "127.0.0.1")
    monkeypatch.setenv("HOOKYARD_PORT", stub_receiver.url.split(":")[2].split("/")[0])

    assert main(["send", "connection.activated"]) == 0
    assert len(stub_receiver.deliveries) == 1


def test_send_uses_the_secret_dev_saved_when_none_is_configured(env: Path, stub_receiver: StubReceiver) -> None:
    env.mkdir()
    (env / "webhook-secret").write_text("whsec_saved_by_dev_0123\n")
    stub_receiver.secret = "whsec_saved_by_dev_0123"

    assert main(["send", "dsync.deleted", "--url", stub_receiver.url]) == 0
    assert stub_receiver.deliveries[0].verified


def test_send_signs_with_the_secret_that_outlives_a_rotation(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", f"whsec_old_secret_1@2999-01-01T00:00:00Z,{TEST_SECRET}")

    assert main(["send", "dsync.deleted", "--url", stub_receiver.url]) == 0
    assert stub_receiver.deliveries[0].verified


def test_send_secret_flag_wins(env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", "whsec_not_this_one")
    stub_receiver.secret = "whsec_from_the_flag"

    assert main(["send", "dsync.deleted", "--url", stub_receiver.url, "--secret", "whsec_from_the_flag"]) == 0
    assert stub_receiver.deliveries[0].verified


def test_send_exits_1_unless_every_response_is_200(
    env: Path, stub_receiver: StubReceiver, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)
    stub_receiver.status = 503

    assert main(["send", "dsync.user.updated", "--count", "2", "--url", stub_receiver.url]) == 1

    assert len(stub_receiver.deliveries) == 2  # a failure does not stop the rest
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["503", "503"]


def test_send_with_a_wrong_secret_gets_a_rejection(env: Path, stub_receiver: StubReceiver) -> None:
    assert main(["send", "dsync.user.updated", "--secret", "whsec_wrong_secret", "--url", stub_receiver.url]) == 1
    assert stub_receiver.deliveries[0].verified is False


def test_send_to_nothing_says_so_in_one_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}/webhooks/workos"

    assert main(["send", "dsync.user.created", "--secret", TEST_SECRET, "--url", url]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"hookyard send: cannot connect to {url} — is `make run` running?\n"


def test_send_without_any_secret_is_a_configuration_error(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "dsync.user.created"]) == 2

    err = capsys.readouterr().err
    assert err.startswith("hookyard: configuration error: WORKOS_WEBHOOK_SECRET: not set")
    assert "--secret" in err
    assert "hookyard dev" in err


def test_send_reports_a_bad_setting_by_name(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOOKYARD_PORT", "eighty")

    assert main(["send", "dsync.user.created", "--secret", TEST_SECRET]) == 2
    assert capsys.readouterr().err.startswith("hookyard: configuration error: HOOKYARD_PORT: ")


def test_send_unreadable_file_is_one_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "--file", "missing.json", "--secret", TEST_SECRET]) == 1
    assert capsys.readouterr().err == "hookyard send: cannot read missing.json: No such file or directory\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["send"],
        ["send", "dsync.user.created", "--file", "x.json"],
        ["send", "user.created"],
        ["send", "dsync.user.created", "--count", "0"],
        ["send", "dsync.user.created", "--source", "Not A Name"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str], env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    assert "usage: hookyard" in capsys.readouterr().err


def test_an_unknown_event_type_lists_the_known_ones(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["send", "user.created"])

    err = capsys.readouterr().err
    assert all(t in err for t in EVENT_TYPES)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--help"], ["dev", "send", "receiver", "worker"]),
        (["dev", "--help"], ["--workers N", "--port P", "--host H"]),
        (["send", "--help"], ["EVENT_TYPE", "--url", "--secret", "--source", "--count N", "--file F"]),
        (["receiver", "--help"], ["python -m receiver"]),
        (["worker", "--help"], ["python -m processor"]),
    ],
)
def test_every_verb_has_help(argv: list[str], expected: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert all(text in out for text in expected)


# --- hookyard receiver / worker -------------------------------------------------------------------------------


class Execed(Exception):
    pass


@pytest.mark.parametrize(("verb", "module"), [("receiver", "receiver"), ("worker", "processor")])
def test_production_verbs_exec_the_module(
    verb: str, module: str, env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[str, list[str], dict[str, str]]] = []

    def fake_execve(path: str, argv: list[str], environ: dict[str, str]) -> None:
        calls.append((path, argv, environ))
        raise Execed

    monkeypatch.setattr(os, "execve", fake_execve)
    monkeypatch.setenv("PYTHONPATH", "/opt/handlers")
    with pytest.raises(Execed):
        main([verb])

    [(path, argv, environ)] = calls
    assert (path, argv) == (sys.executable, [sys.executable, "-m", module])
    assert environ["PYTHONPATH"] == os.pathsep.join([str(tmp_path), "/opt/handlers"])
    assert environ["HOOKYARD_DATA_DIR"] == str(env)


# --- hookyard dev: the parts that need no child processes -----------------------------------------------------


def test_dev_secret_is_created_private_and_reused(env: Path) -> None:
    path = env / "webhook-secret"

    first, created = cli._load_or_create_secret(path)
    again, created_again = cli._load_or_create_secret(path)

    assert (created, created_again) == (True, False)
    assert first == again
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_dev_redis_port_is_stable_while_free(env: Path) -> None:
    env.mkdir()
    port = free_port()
    (env / "redis.port").write_text(f"{port}\n")

    assert cli._redis_port(env) == port
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        assert cli._redis_port(env) != port


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
    assert {name.split(":")[0] for name in children} == {"receiver", "worker", "worker-0"}
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
