"""Tests for `python -m receiver` (receiver/__main__.py, receiver/server.py): a real process, real signals."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from processor.devtools.embedded_redis import free_port
from tests.conftest import TEST_SECRET
from tests.receiver.conftest import event_body, inbox_events, signed_headers

ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE_S = 20.0
STOP_DEADLINE_S = 15.0

pytestmark = pytest.mark.slow

StartReceiver = Callable[[dict[str, str]], "Receiver"]


def _environment(**settings: str) -> dict[str, str]:
    # The parent's environment minus any Hookyard settings, so only what the test passes configures the child.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKYARD_", "WORKOS_", "REDIS_URL"))}
    return {**env, "HOOKYARD_LOG_FORMAT": "json", **settings}


class Receiver:
    """A `python -m receiver` child process with its output in files (pipes could fill up and block it)."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.stdout = (tmp_path / "stdout.log").open("wb")
        self.stderr_path = tmp_path / "stderr.log"
        self.stderr = self.stderr_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "receiver"], cwd=ROOT, env=env, stdout=self.stdout, stderr=self.stderr
        )

    def wait_until_serving(self, url: str) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        with httpx.Client(timeout=1.0) as client:
            while True:
                try:
                    if client.get(url).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"receiver did not start: {self.output()}"
                # Waiting on the process doubles as the polling interval and catches an early exit.
                try:
                    code = self.process.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    continue
                raise AssertionError(f"receiver exited with {code}: {self.output()}")

    def output(self) -> str:
        self.stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.stdout.close()
        self.stderr.close()


@pytest.fixture
def start_receiver(tmp_path: Path) -> Iterator[StartReceiver]:
    started: list[Receiver] = []

    def start(env: dict[str, str]) -> Receiver:
        receiver = Receiver(tmp_path, env)
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.close()


def test_sigterm_drains_and_exits_0_with_accepted_events_stored(
    start_receiver: StartReceiver, redis_url: str, redis_client: redis.Redis
) -> None:
    # Given a running receiver
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    receiver = start_receiver(
        _environment(REDIS_URL=redis_url, WORKOS_WEBHOOK_SECRET=TEST_SECRET, HOOKYARD_PORT=str(port))
    )
    receiver.wait_until_serving(f"{base}/healthz")

    # When it accepts deliveries, and is then told to stop
    accepted: list[str] = []
    with httpx.Client(base_url=base, timeout=5.0) as client:
        for n in range(20):
            body = event_body(f"event_{n:02d}")
            response = client.post("/webhooks/workos", content=body, headers=signed_headers(body))
            assert response.status_code == 200
            accepted.append(response.json()["id"])
        assert client.get("/readyz").json()["status"] == "ready"
        assert "hookyard_receiver_requests_total" in client.get("/metrics").text
    receiver.process.send_signal(signal.SIGTERM)

    # Then it exits 0 in time, and every accepted event is in Redis
    assert receiver.process.wait(timeout=STOP_DEADLINE_S) == 0, receiver.output()
    assert [e.event_id for e in inbox_events(redis_client)] == accepted
    assert "receiver.stopping" in receiver.output()
    # And the deployed (batched) access log wrote one whole line per delivery, probes and scrapes left out
    lines = [orjson.loads(line) for line in receiver.output().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger_name") == "hookyard.receiver.access"]
    assert [line["event_id"] for line in access] == accepted
    assert {(line["event"], line["level"], line["outcome"], line["status"]) for line in access} == {
        ("request", "info", "accepted", 200)
    }


async def test_sigterm_during_a_burst_answers_each_request_200_stored_or_503(
    start_receiver: StartReceiver, redis_url: str, redis_client: redis.Redis
) -> None:
    # Given a running receiver under a burst of concurrent deliveries
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    receiver = start_receiver(
        _environment(REDIS_URL=redis_url, WORKOS_WEBHOOK_SECRET=TEST_SECRET, HOOKYARD_PORT=str(port))
    )
    receiver.wait_until_serving(f"{base}/healthz")
    answered = asyncio.Event()

    async def deliver(client: httpx.AsyncClient, n: int) -> httpx.Response:
        body = event_body(f"event_{n:03d}")
        response = await client.post("/webhooks/workos", content=body, headers=signed_headers(body))
        answered.set()
        return response

    # When SIGTERM arrives while requests are in flight
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=base, timeout=10.0, limits=limits) as client:
        burst = [asyncio.ensure_future(deliver(client, n)) for n in range(300)]
        await asyncio.wait_for(answered.wait(), timeout=10.0)
        receiver.process.send_signal(signal.SIGTERM)
        results = await asyncio.gather(*burst, return_exceptions=True)

    # Then every request got a deliberate answer or none (refused or closed: the sender retries), every 200
    # is in Redis, and the process exits 0
    accepted = set()
    for result in results:
        if isinstance(result, httpx.Response):
            assert result.status_code in (200, 503), result.text
            if result.status_code == 200:
                accepted.add(result.json()["id"])
        else:
            assert isinstance(result, httpx.TransportError), repr(result)
    assert accepted
    assert receiver.process.wait(timeout=STOP_DEADLINE_S) == 0, receiver.output()
    stored = {e.event_id for e in inbox_events(redis_client)}
    assert accepted <= stored


def test_with_an_ops_port_both_servers_run_and_stop_together(
    start_receiver: StartReceiver, redis_url: str, redis_client: redis.Redis
) -> None:
    port, ops_port = free_port(), free_port()
    receiver = start_receiver(
        _environment(
            REDIS_URL=redis_url,
            WORKOS_WEBHOOK_SECRET=TEST_SECRET,
            HOOKYARD_PORT=str(port),
            HOOKYARD_OPS_PORT=str(ops_port),
        )
    )
    receiver.wait_until_serving(f"http://127.0.0.1:{ops_port}/readyz")

    with httpx.Client(timeout=5.0) as client:
        body = event_body("event_ops")
        response = client.post(f"http://127.0.0.1:{port}/webhooks/workos", content=body, headers=signed_headers(body))
        assert response.status_code == 200
        assert client.get(f"http://127.0.0.1:{port}/metrics").status_code == 404
        metrics = client.get(f"http://127.0.0.1:{ops_port}/metrics").text
        assert 'hookyard_receiver_requests_total{outcome="accepted",source="workos"} 1.0' in metrics
    receiver.process.send_signal(signal.SIGTERM)

    assert receiver.process.wait(timeout=STOP_DEADLINE_S) == 0, receiver.output()
    assert [e.event_id for e in inbox_events(redis_client)] == ["event_ops"]


def test_oversized_chunked_body_is_refused_by_the_real_server(start_receiver: StartReceiver, redis_url: str) -> None:
    port = free_port()
    receiver = start_receiver(
        _environment(
            REDIS_URL=redis_url,
            WORKOS_WEBHOOK_SECRET=TEST_SECRET,
            HOOKYARD_PORT=str(port),
            HOOKYARD_MAX_BODY_BYTES="65536",
        )
    )
    receiver.wait_until_serving(f"http://127.0.0.1:{port}/healthz")

    def chunks() -> Iterator[bytes]:
        for _ in range(64):  # 4 MiB in all, far past the 64 KiB limit
            yield b"z" * 65536

    with httpx.Client(timeout=5.0) as client:
        response = client.post(f"http://127.0.0.1:{port}/webhooks/workos", content=chunks())

    assert response.status_code == 413
    receiver.process.send_signal(signal.SIGTERM)
    assert receiver.process.wait(timeout=STOP_DEADLINE_S) == 0, receiver.output()


def test_a_configuration_error_exits_2_naming_the_setting(start_receiver: StartReceiver, redis_url: str) -> None:
    receiver = start_receiver(_environment(REDIS_URL=redis_url))

    assert receiver.process.wait(timeout=STOP_DEADLINE_S) == 2
    output = receiver.output().strip()
    assert output.count("\n") == 0  # one line
    assert "WORKOS_WEBHOOK_SECRET" in output
