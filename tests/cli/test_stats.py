"""`hookyard stats`: the backlog Redis knows per handler, plus rate, lag, dedupe and late events when the workers'
metrics endpoint answers (a real prometheus_client server with the workers' metric definitions here)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from wsgiref.simple_server import WSGIServer

import orjson
import pytest
import redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.registry import Collector

from processor.cli import main
from processor.devtools.embedded_redis import free_port
from processor.metrics import WorkerMetrics
from processor.testing import Harness
from shared import keys
from tests.fixtures import cli_state
from tests.fixtures.cli_state import Scenario

HANDLER_COLUMNS = ["HANDLER", "PENDING", "OLDEST", "DEAD", "SKIPPED"]
METRIC_COLUMNS = ["RUNS/S", "LAG P50", "LAG P99", "LATE"]


@pytest.fixture
def scenario(redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Scenario:
    # Nothing listens on the metrics port unless a test starts a server there.
    cli_state.use_environment(monkeypatch, REDIS_URL=redis_url, HOOKYARD_WORKER_METRICS_PORT=str(free_port()))
    with Harness(cli_state.HANDLERS, redis_url=redis_url) as yard:
        built = cli_state.build(yard)
    capsys.readouterr()  # the harness's log lines
    return built


class Ticker(Collector):
    """Counts 5 more ok runs of cli.users each time it is scraped, so two scrapes see a rate."""

    def __init__(self, metrics: WorkerMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[object]:
        self.metrics.runs.labels("cli.users", "ok").inc(5)
        return []


@pytest.fixture
def worker_metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[WorkerMetrics]:
    """A metrics endpoint on HOOKYARD_WORKER_METRICS_PORT serving the workers' metrics."""
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    registry.register(Ticker(metrics))
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    monkeypatch.setenv("HOOKYARD_WORKER_METRICS_PORT", str(port))
    try:
        yield metrics
    finally:
        assert isinstance(server, WSGIServer)
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def table(out: str) -> list[list[str]]:
    return [re.split(r" {2,}", line.strip()) for line in out.strip().splitlines()]


def test_stats_from_redis_alone(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats"]) == 0

    out = capsys.readouterr().out
    handlers_part, footer = out.split("\n\n")
    header, *rows = table(handlers_part)
    assert header == HANDLER_COLUMNS
    by_name = {row[0]: row for row in rows}
    assert by_name["cli.users"][1] == "1"  # the pending event
    assert re.fullmatch(r"7m \d\ds", by_name["cli.users"][2])
    assert by_name["cli.users"][3:] == ["1", "0"]
    assert by_name["cli.strict"][1:2] + by_name["cli.strict"][3:] == ["1", "0", "1"]
    assert by_name["cli.audit"][1:] == ["0", "-", "0", "0"]
    assert footer.startswith("inbox 0 · poison 0 · workers alive 0 · at ")
    assert "\nwake-ups queued 0 (redis at redis://127.0.0.1:" in footer  # the store's Redis, by default
    assert "worker metrics not reachable at http://127.0.0.1:" in footer
    assert "showing what Redis knows" in footer


def test_stats_json_from_redis_alone(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--json"]) == 0

    document = orjson.loads(capsys.readouterr().out)
    assert (document["inbox"], document["poison"], document["workers_alive"]) == (0, 0, 0)
    users = document["handlers"]["cli.users"]
    assert (users["pending"], users["dead"], users["skipped"]) == (1, 1, 0)
    assert 7 * 60 <= users["oldest_pending_age_s"] < 9 * 60
    assert "runs_per_s" not in users
    assert document["handlers"]["cli.strict"]["skipped"] == 1
    assert document["metrics"]["reachable"] is False
    assert document["metrics"]["error"]


def test_an_oldest_pending_event_inside_the_window_is_held(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a hold-back window longer than the pending event has waited (about 8 minutes)
    monkeypatch.setenv("HOOKYARD_REORDER_WINDOW", "10m")

    assert main(["stats"]) == 0

    handlers_part, footer = capsys.readouterr().out.split("\n\n")
    by_name = {row[0]: row for row in table(handlers_part)[1:]}
    assert re.fullmatch(r"7m \d\ds held \(window\)", by_name["cli.users"][2]), by_name
    assert re.fullmatch(r"7m \d\ds held \(window\)", by_name["cli.strict"][2]), by_name
    assert "held (window): younger than the hold-back window (HOOKYARD_REORDER_WINDOW=10m)" in footer


def test_past_the_window_it_is_not_held(scenario: Scenario, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--json"]) == 0

    document = orjson.loads(capsys.readouterr().out)
    assert document["reorder_window_s"] == 5.0
    assert document["handlers"]["cli.users"]["held_by_window"] is False
    assert document["handlers"]["cli.audit"]["held_by_window"] is False  # nothing pending


def test_a_handler_the_workers_run_unordered_has_no_window(
    scenario: Scenario, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given live workers whose cli.users runs events at once (order_by="none"), and a long window
    monkeypatch.setenv("HOOKYARD_REORDER_WINDOW", "10m")
    cli_state.publish_as_worker(redis_client, "w:1", cli_state.registry(order_by="none"))

    assert main(["stats", "--json"]) == 0

    handlers = orjson.loads(capsys.readouterr().out)["handlers"]
    assert handlers["cli.users"]["held_by_window"] is False
    assert handlers["cli.strict"]["held_by_window"] is False


def test_stats_counts_inbox_poison_and_workers(
    scenario: Scenario, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    redis_client.rpush(keys.INBOX, b"not yet ingested")
    redis_client.rpush(keys.INBOX_POISON, b"garbage")
    redis_client.zadd(keys.WORKERS, {"host:1": 10**13, "host:2": 10**13})

    assert main(["stats", "--json"]) == 0

    document = orjson.loads(capsys.readouterr().out)
    assert (document["inbox"], document["poison"], document["workers_alive"]) == (1, 1, 2)


def test_stats_counts_the_wakeups_waiting_in_the_broker(
    scenario: Scenario, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given three wake-ups waiting in the default broker (the store's Redis)
    redis_client.rpush(keys.WAKE_QUEUE, b"m1", b"m2", b"m3")
    # Then stats counts them
    assert main(["stats", "--json"]) == 0
    broker = orjson.loads(capsys.readouterr().out)["broker"]
    assert (broker["kind"], broker["reachable"], broker["wakeups_queued"]) == ("redis", True, 3)


def test_stats_says_when_the_broker_does_not_answer(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a RabbitMQ broker URL where nothing listens
    monkeypatch.setenv("HOOKYARD_BROKER_URL", f"amqp://hy:hunter2hunter2@127.0.0.1:{free_port()}/%2F")
    # Then stats still shows what Redis knows, says the broker is unreachable, and never its password
    assert main(["stats", "--sample", "0"]) == 0
    out = capsys.readouterr().out
    assert "wake-up broker unreachable (rabbitmq at amqp://hy:***@127.0.0.1:" in out
    assert "nothing is lost" in out and "hunter2" not in out


def test_stats_shows_threads_stuck_in_timed_out_calls_and_expired_letters(
    scenario: Scenario, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a live worker with 2 threads stuck in abandoned calls, a gone one with 5, and 3 expired dead letters
    redis_client.zadd(keys.WORKERS, {"host:1": 10**13, "host:9": 1})
    redis_client.hset(keys.WORKER_INFO, mapping={"host:1": b'{"abandoned": 2}', "host:9": b'{"abandoned": 5}'})
    redis_client.hset(keys.stats_key(3), "expired:dead:cli.users", 3)

    assert main(["stats"]) == 0
    text = capsys.readouterr().out
    assert "2 threads stuck in timed-out calls" in text
    assert "cli.users: 3 dead dropped unreplayed" in text
    assert main(["stats", "--json"]) == 0
    document = orjson.loads(capsys.readouterr().out)
    assert document["abandoned_threads"] == 2
    assert document["handlers"]["cli.users"]["expired"] == {"dead": 3}


def test_stats_with_worker_metrics(
    scenario: Scenario, worker_metrics: WorkerMetrics, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given ten deliveries to cli.users at 0.3 s lag, 8 new events and 2 duplicates, one late event each way
    for _ in range(10):
        worker_metrics.lag.labels("cli.users").observe(0.3)
    worker_metrics.ingested.labels("workos", "new").inc(8)
    worker_metrics.ingested.labels("workos", "duplicate").inc(2)
    worker_metrics.late.labels("cli.users", "delivered").inc()
    worker_metrics.late.labels("cli.strict", "skipped").inc()

    assert main(["stats", "--sample", "0.2"]) == 0

    handlers_part, footer = capsys.readouterr().out.split("\n\n")
    header, *rows = table(handlers_part)
    assert header == HANDLER_COLUMNS + METRIC_COLUMNS
    users = {row[0]: row for row in rows}["cli.users"]
    assert float(users[5]) > 0  # five runs more between the two scrapes
    assert users[6:] == ["0.4s", "0.5s", "1"]  # interpolated in the (0.25, 0.5] bucket: 0.375 and 0.4975
    assert "dedupe 20.0% (2 duplicates of 10 ingested)" in footer
    assert "late 1 delivered, 1 skipped" in footer


def test_stats_json_with_worker_metrics(
    scenario: Scenario, worker_metrics: WorkerMetrics, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(10):
        worker_metrics.lag.labels("cli.users").observe(0.3)
    worker_metrics.ingested.labels("workos", "new").inc(3)
    worker_metrics.ingested.labels("workos", "duplicate").inc(1)

    assert main(["stats", "--json", "--sample", "0.1"]) == 0

    document = orjson.loads(capsys.readouterr().out)
    metrics = document["metrics"]
    assert metrics["reachable"] is True
    assert metrics["runs_per_s"] > 0
    assert metrics["lag_p50_s"] == pytest.approx(0.375)
    assert metrics["lag_p99_s"] == pytest.approx(0.4975, abs=0.001)
    assert metrics["dedupe_ratio"] == pytest.approx(0.25)
    assert (metrics["ingested_new"], metrics["ingested_duplicate"]) == (3, 1)
    users = document["handlers"]["cli.users"]
    assert users["runs_per_s"] > 0
    assert users["lag_p50_s"] == pytest.approx(0.375)
    assert document["handlers"]["cli.strict"]["lag_p50_s"] is None


def test_watch_prints_one_document_per_refresh(
    scenario: Scenario, worker_metrics: WorkerMetrics, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["stats", "--watch", "0.1", "--count", "3", "--json"]) == 0

    documents = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(documents) == 3
    assert all(d["handlers"]["cli.users"]["dead"] == 1 for d in documents)
    assert all(d["metrics"]["runs_per_s"] > 0 for d in documents)


def test_unreachable_redis_is_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    cli_state.use_environment(monkeypatch, REDIS_URL=f"redis://user:s3cr3t-pw@127.0.0.1:{port}/0")

    assert main(["stats"]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"hookyard stats: cannot reach Redis at redis://user:****@127.0.0.1:{port}/0 — ")
    assert captured.err.count("\n") == 1
    assert "s3cr3t" not in captured.err
    assert "Traceback" not in captured.err


def test_without_redis_url_it_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_state.use_environment(monkeypatch, HOOKYARD_DATA_DIR=str(tmp_path))

    assert main(["stats"]) == 2
    assert capsys.readouterr().err.startswith("hookyard: configuration error: REDIS_URL: not set")
