"""`hookyard console`: serves the console on the chosen port until Ctrl-C, says whether it is read-only, and
refuses a bad console setting with exit 2 naming it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from processor.devtools.embedded_redis import free_port
from tests.fixtures.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _environment(redis_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKYARD_", "WORKOS_")) and k != "REDIS_URL"}
    return {**env, "REDIS_URL": redis_url, "HOOKYARD_DATA_DIR": str(tmp_path / "data"), **extra}


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_console_serves_until_interrupted(redis_url: str, tmp_path: Path) -> None:
    # Given a Redis and no console token
    port = free_port()
    env = _environment(redis_url, tmp_path, HOOKYARD_WORKER_METRICS_PORT="0")
    # When `hookyard console --port P` runs
    process = subprocess.Popen(
        [sys.executable, "-m", "processor.cli", "console", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for(lambda: _answers(url), 30, "the console to answer")
        # Then it serves the overview, read-only, on loopback
        assert "read-only" in httpx.get(url, timeout=5).text
    finally:
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=30)
    # And it said where and how it runs, and stopped on Ctrl-C with the exit code every verb gives it
    assert f"console on http://127.0.0.1:{port}/ — read-only (HOOKYARD_CONSOLE_TOKEN not set)" in out
    assert process.returncode == 130
    assert not _answers(f"http://127.0.0.1:{port}/")


def test_a_short_token_is_a_configuration_error(redis_url: str, tmp_path: Path) -> None:
    env = _environment(redis_url, tmp_path, HOOKYARD_CONSOLE_TOKEN="too-short")
    done = subprocess.run(
        [sys.executable, "-m", "processor.cli", "console"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "HOOKYARD_CONSOLE_TOKEN: must be at least 16 characters" in done.stderr
