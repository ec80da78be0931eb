"""What every verb works with: settings that find the Redis of a running `hookyard dev`, a Redis connection whose
failures are one line without the password, and URLs fit to print."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest

from processor.cli import main
from processor.cli.context import settings_without_redis, without_password
from processor.cli.devstate import DevStack, record_stack
from processor.devtools.embedded_redis import EmbeddedRedis, free_port
from shared.redis_clients import OPERATOR

#: Every verb that talks to Redis, with arguments that get it there.
REDIS_VERBS = [
    ["stats"],
    ["doctor"],
    ["events", "list"],
    ["events", "show", "event_1"],
    ["dlq", "list"],
    ["dlq", "show", "event_1"],
    ["dlq", "replay", "--all"],
    ["dlq", "purge", "--all", "--yes"],
    ["handlers"],
]


@pytest.fixture(scope="module")
def frozen_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A redis-server of these tests' own, for SIGSTOP: freezing the session's would stall every other test."""
    with EmbeddedRedis(tmp_path_factory.mktemp("frozen-redis")) as server:
        yield server


@contextmanager
def frozen(server: EmbeddedRedis) -> Iterator[None]:
    """`server` stopped (SIGSTOP): it still accepts connections, as the kernel does for it, but never answers."""
    assert server.pid is not None
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)


def said_by(argv: list[str], captured: pytest.CaptureResult[str]) -> str:
    return captured.out if argv == ["doctor"] else captured.err  # doctor reports Redis as one of its checks


@pytest.mark.parametrize("argv", REDIS_VERBS)
def test_unreachable_redis_is_one_line_and_exit_1(
    argv: list[str], env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    monkeypatch.setenv("REDIS_URL", f"redis://:pa55word-here@127.0.0.1:{port}/0")

    assert main(argv) == 1

    captured = capsys.readouterr()
    expected = f"cannot reach Redis at redis://:****@127.0.0.1:{port}/0 — is it running? check REDIS_URL"
    assert expected + " (Connection refused)" in said_by(argv, captured)
    assert "pa55word" not in captured.out + captured.err
    assert "Traceback" not in captured.err
    if argv != ["doctor"]:
        assert captured.err.startswith(f"hookyard {argv[0]}: {expected} (Connection refused)")
        assert captured.err.count("\n") == 1


@pytest.mark.slow
@pytest.mark.parametrize("argv", REDIS_VERBS)
def test_a_frozen_redis_is_one_line_within_the_bound(
    argv: list[str],
    env: Path,
    frozen_redis: EmbeddedRedis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a Redis that accepts connections but never answers (a paused VM, a process stuck in swap)
    monkeypatch.setenv("REDIS_URL", frozen_redis.url)
    monkeypatch.setenv("HOOKYARD_WORKER_METRICS_PORT", "0")
    with frozen(frozen_redis):
        # When a verb asks it something
        started = time.monotonic()
        code = main(argv)
        elapsed = time.monotonic() - started

    # Then it fails in one line, within the operator bound (3 s) and a margin, not after 15 s of hanging
    captured = capsys.readouterr()
    assert code == 1
    assert elapsed < OPERATOR.socket_timeout_s + 2.0
    line = f"Redis at {frozen_redis.url} did not answer within 3 s — is it frozen or overloaded?"
    assert line in said_by(argv, captured)
    assert "Traceback" not in captured.err
    if argv != ["doctor"]:
        assert captured.err.startswith(f"hookyard {argv[0]}: {line}")
        assert captured.err.count("\n") == 1


def test_redis_verbs_use_the_redis_of_a_running_dev(
    env: Path, redis_server: EmbeddedRedis, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no REDIS_URL, but a `hookyard dev` whose embedded Redis runs on this data directory
    env.mkdir()
    (env / "redis.pid").write_text(f"{redis_server.pid}\n")
    (env / "redis.port").write_text(f"{redis_server.port}\n")

    assert main(["stats", "--json", "--sample", "0"]) == 0
    assert orjson.loads(capsys.readouterr().out)["inbox"] == 0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@host:6379/0", "redis://:****@host:6379/0"),
        ("rediss://user:pw@host:6379/0", "rediss://user:****@host:6379/0"),
        ("redis://host:6379/0?password=pw&db=1", "redis://host:6379/0?password=****&db=1"),
        ("redis://host:6379/0", "redis://host:6379/0"),
    ],
)
def test_urls_are_printed_without_passwords(url: str, shown: str) -> None:
    assert without_password(url) == shown


# --- the addresses of a running `hookyard dev` ------------------------------------------------------------------


def record_a_stack(data_dir: Path, pid: int, **settings: str) -> None:
    port = settings.get("HOOKYARD_PORT", "8000")
    stack = DevStack(
        pid=pid,
        receiver_url=f"http://127.0.0.1:{port}/webhooks/workos",
        metrics_url=f"http://127.0.0.1:{port}/metrics",
        worker_metrics_url="http://127.0.0.1:9191/metrics",
        redis_url="redis://127.0.0.1:6399/0",
        settings=settings,
    )
    record_stack(data_dir, stack)


def test_verbs_find_the_addresses_of_a_running_dev_stack(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a live `hookyard dev` (this process stands in for it) that ran with its own ports
    record_a_stack(env, os.getpid(), HOOKYARD_PORT="8765", HOOKYARD_WORKER_METRICS_PORT="9292")

    # Then a verb whose environment names no port reaches that stack
    settings = settings_without_redis(dict(os.environ))
    assert (settings.port, settings.worker_metrics_port) == (8765, 9292)

    # And what the environment says wins, setting by setting
    monkeypatch.setenv("HOOKYARD_PORT", "8001")
    settings = settings_without_redis(dict(os.environ))
    assert (settings.port, settings.worker_metrics_port) == (8001, 9292)

    # And a REDIS_URL naming another Redis says this is another stack: none of its addresses are used
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6400/0")
    assert settings_without_redis(dict(os.environ)).worker_metrics_port == 9191


def test_the_record_of_a_dev_stack_that_is_gone_is_ignored(env: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    record_a_stack(env, gone.pid, HOOKYARD_PORT="8765")

    assert settings_without_redis(dict(os.environ)).port == 8000
