"""A receiver or worker fleet started by hand against a Redis it cannot use stops at once with one clear line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from processor.devtools.embedded_redis import EmbeddedRedis
from shared.redis_clients import redact_url
from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"receiver": [sys.executable, "-m", "receiver"], "worker": [sys.executable, "-m", "processor"]}


def start(command: str, redis_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url, "WORKOS_WEBHOOK_SECRET": TEST_SECRET, "PYTHONPATH": str(ROOT),
           "HOOKYARD_ENTRY_POINTS": "false", "HOOKYARD_PORT": "0", "HOOKYARD_WORKER_METRICS_PORT": "0"}  # fmt: skip
    return subprocess.run(COMMANDS[command], env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_nothing_listening_is_one_line_and_exit_4(command: str) -> None:
    result = start(command, "redis://:s3cret@127.0.0.1:1/0")
    assert result.returncode == 4
    [line] = result.stderr.strip().splitlines()
    assert "cannot reach Redis at redis://***@127.0.0.1:1/0 — is it running? check REDIS_URL" in line
    assert "s3cret" not in result.stderr


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_frozen_redis_is_named_within_seconds(command: str, redis_server: EmbeddedRedis) -> None:
    assert redis_server.pid is not None
    os.kill(redis_server.pid, signal.SIGSTOP)
    try:
        result = start(command, redis_server.url)
    finally:
        os.kill(redis_server.pid, signal.SIGCONT)
    assert result.returncode == 4
    assert "did not answer within 3 s" in result.stderr


def test_redact_url() -> None:
    assert redact_url("redis://u:p@h:1/0") == "redis://u:***@h:1/0"
    assert redact_url("rediss://:p@h:1") == "rediss://***@h:1"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"
    assert redact_url("amqp://hy:hunter2@rabbit:5672/%2F?heartbeat=10") == "amqp://hy:***@rabbit:5672/%2F?heartbeat=10"
    assert redact_url("amqps://hy:p@ss@rabbit/vh") == "amqps://hy:***@rabbit/vh"
