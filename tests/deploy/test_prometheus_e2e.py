"""End to end for operations: a real Prometheus with the shipped scrape jobs and alert rules scrapes a real
receiver and real workers (on a real Redis) and sees the events sent to them accepted, ingested and handled,
while every alert rule evaluates without error and none fires."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
import yaml

from processor.devtools.embedded_redis import EmbeddedRedis, free_port
from processor.devtools.samples import EVENT_TYPES, sample_event
from shared.signature import sign
from tests.conftest import TEST_SECRET
from tests.deploy import dockerfile
from tests.deploy.paths import ALERT_RULES, DASHBOARD, PROMETHEUS_CONFIG, ROOT

pytestmark = pytest.mark.slow

WORKERS = 2
LOG_EVENTS_HANDLER = "hookyard.log_events"
_DEADLINE_S = 30.0
_POLL_S = 0.2


@dataclass(frozen=True, slots=True)
class Stack:
    receiver_port: int
    webhook_url: str
    prometheus_url: str
    logs: Path
    http: httpx.Client


def log_tails(logs: Path) -> str:
    return "\n".join(
        f"--- {p.name} ---\n" + "\n".join(p.read_text().splitlines()[-15:]) for p in sorted(logs.glob("*.log"))
    )


def wait_for(check: Callable[[], Any], what: str, logs: Path, timeout_s: float = _DEADLINE_S) -> Any:
    """Poll `check` until it returns something truthy; fail with the processes' logs after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(_POLL_S)  # polling interval of a deadline-bounded wait
    pytest.fail(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})\n{log_tails(logs)}")


def start(stack: ExitStack, name: str, argv: list[str], env: dict[str, str], logs: Path) -> None:
    """Start a process logging to `logs/<name>.log`, and stop it (SIGTERM, then SIGKILL) when `stack` closes."""
    log = stack.enter_context((logs / f"{name}.log").open("wb"))
    process = subprocess.Popen(argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def stop() -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    stack.callback(stop)


def prometheus_config(receiver_port: int, worker_port: int) -> dict[str, Any]:
    """The shipped config with its targets on loopback, 1 s scrapes and evaluations, and the rules by path."""
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    ports = {"hookyard-receiver": receiver_port, "hookyard-worker": worker_port}
    assert {job["job_name"] for job in config["scrape_configs"]} == set(ports)
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str((PROMETHEUS_CONFIG.parent / rule).resolve()) for rule in config["rule_files"]]
    return config


@pytest.fixture(scope="module")
def stack(
    redis_server: EmbeddedRedis, prometheus_binary: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One stack for the module: only the first test sends events; the others only read."""
    if not redis_server.running:
        redis_server.start()
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    redis_url = redis_server.url
    tmp_path = tmp_path_factory.mktemp("prometheus-e2e")
    receiver_port, worker_port, prometheus_port = free_port(), free_port(), free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(
        REDIS_URL=redis_url,
        WORKOS_WEBHOOK_SECRET=TEST_SECRET,
        HOOKYARD_HOST="127.0.0.1",
        HOOKYARD_PORT=str(receiver_port),
        HOOKYARD_WORKER_METRICS_PORT=str(worker_port),
        HOOKYARD_WORKERS=str(WORKERS),
        HOOKYARD_LOG_EVENTS="true",
        HOOKYARD_LOG_FORMAT="json",
        PYTHONPATH=str(ROOT),
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(receiver_port, worker_port)))
    with ExitStack() as processes:
        # Closed last: one client, since each new httpx client loads the CA bundle again (~0.1 s).
        http = processes.enter_context(httpx.Client(timeout=5))
        start(processes, "receiver", [sys.executable, "-m", "receiver"], env, logs)
        start(processes, "worker", [sys.executable, "-m", "processor"], env, logs)
        start(
            processes,
            "prometheus",
            [
                prometheus_binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                "--log.level=warn",
            ],
            env,
            logs,
        )
        stack = Stack(
            receiver_port=receiver_port,
            webhook_url=f"http://127.0.0.1:{receiver_port}/webhooks/workos",
            prometheus_url=f"http://127.0.0.1:{prometheus_port}",
            logs=logs,
            http=http,
        )
        wait_for(lambda: answers(stack, f"http://127.0.0.1:{receiver_port}/readyz"), "the receiver", logs)
        wait_for(lambda: answers(stack, f"{stack.prometheus_url}/-/ready"), "prometheus", logs)
        yield stack


def answers(stack: Stack, url: str) -> bool:
    try:
        return stack.http.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def query(stack: Stack, promql: str) -> list[dict[str, Any]]:
    response = stack.http.get(f"{stack.prometheus_url}/api/v1/query", params={"query": promql})
    body = response.json()
    assert body["status"] == "success", f"{promql}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def value_of(stack: Stack, promql: str) -> float | None:
    """The value of a query that yields one sample (None while it yields none)."""
    result = query(stack, promql)
    assert len(result) <= 1, f"{promql} yields several series: {result}"
    return float(result[0]["value"][1]) if result else None


def post(stack: Stack, body: bytes, secret: str) -> httpx.Response:
    headers = {
        "Content-Type": "application/json",
        "WorkOS-Signature": sign(body, secret.encode(), int(time.time() * 1000)),
    }
    return stack.http.post(stack.webhook_url, content=body, headers=headers)


def test_prometheus_sees_events_accepted_ingested_and_handled(stack: Stack) -> None:
    # Given the stack: receiver ready (Redis reachable), Prometheus up with the shipped jobs and rules
    # When three events arrive, one of them twice, and one delivery with a wrong signature
    rng = random.Random(20240601)
    bodies = [orjson.dumps(sample_event(event_type, rng=rng)) for event_type in EVENT_TYPES[:3]]
    for body in [*bodies, bodies[0]]:
        response = post(stack, body, TEST_SECRET)
        assert response.status_code == 200, response.text
    assert post(stack, bodies[1], "whsec_not_the_secret").status_code == 401

    # Then Prometheus scrapes both jobs and sees exactly that
    expected = {
        'sum(up{job="hookyard-receiver"})': 1,
        'sum(up{job="hookyard-worker"})': 1,
        'sum(hookyard_receiver_requests_total{source="workos",outcome="accepted"})': 4,
        'sum(hookyard_receiver_requests_total{source="workos",outcome="invalid_signature"})': 1,
        'sum(hookyard_receiver_signature_failures_total{source="workos",reason="mismatch"})': 1,
        'sum(hookyard_events_ingested_total{source="workos",outcome="new"})': 3,
        'sum(hookyard_events_ingested_total{source="workos",outcome="duplicate"})': 1,
        f'sum(hookyard_handler_runs_total{{handler="{LOG_EVENTS_HANDLER}",outcome="ok"}})': 3,
        "min(hookyard_store_up)": 1,
        "min(hookyard_broker_up)": 1,
        "max(hookyard_workers_alive)": WORKERS,
        "max(hookyard_inbox_messages)": 0,
        f'max(hookyard_pending_events{{handler="{LOG_EVENTS_HANDLER}"}})': 0,
    }

    def mismatches() -> dict[str, float | None]:
        return {q: v for q in expected if (v := value_of(stack, q)) != expected[q]}

    wait_for(lambda: not mismatches(), "the expected values in Prometheus", stack.logs)
    # Handled once each, with the latency histograms filled in
    assert value_of(stack, "sum(hookyard_handler_duration_seconds_count)") == 3
    assert value_of(stack, "sum(hookyard_delivery_lag_seconds_count)") == 3


def test_every_rule_loads_and_evaluates_cleanly_and_no_alert_fires(stack: Stack) -> None:
    shipped = {r["alert"] for g in yaml.safe_load(ALERT_RULES.read_text())["groups"] for r in g["rules"]}

    def rules() -> list[dict[str, Any]]:
        response = stack.http.get(f"{stack.prometheus_url}/api/v1/rules").json()
        return [rule for group in response["data"]["groups"] for rule in group["rules"]]

    # Wait until the workers are scraped and every rule has been evaluated over their metrics
    wait_for(lambda: value_of(stack, "max(hookyard_workers_alive)") == WORKERS, "the workers' metrics", stack.logs)

    def evaluated() -> list[dict[str, Any]] | None:
        loaded = rules()
        return loaded if loaded and all(rule["health"] != "unknown" for rule in loaded) else None

    loaded = wait_for(evaluated, "every rule to be evaluated", stack.logs)
    assert {rule["name"] for rule in loaded} == shipped
    assert {rule["name"]: rule.get("lastError") for rule in loaded if rule["health"] != "ok"} == {}
    assert [rule["name"] for rule in loaded if rule["state"] == "firing"] == []


def test_every_dashboard_query_is_valid_promql(stack: Stack) -> None:
    dashboard = orjson.loads(DASHBOARD.read_bytes())
    variables = {"$__rate_interval": "1m", "$source": ".*", "$handler": ".*"}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            promql = target["expr"]
            for variable, value in variables.items():
                promql = promql.replace(variable, value)
            assert "$" not in promql, f"{panel['title']}: unknown variable in {target['expr']}"
            query(stack, promql)  # a parse or type error fails here


def test_the_image_healthcheck_passes_against_a_running_receiver(stack: Stack) -> None:
    final = dockerfile.stages()[-1]
    [healthcheck] = [arg for keyword, arg in final if keyword == "HEALTHCHECK"]
    argv = json.loads(healthcheck.partition(" CMD ")[2])
    assert argv[0] == "python"
    env = {**os.environ, "HOOKYARD_PORT": str(stack.receiver_port)}
    result = subprocess.run(
        [sys.executable, *argv[1:]], env=env, capture_output=True, text=True, timeout=10, check=False
    )
    assert result.returncode == 0, result.stderr
