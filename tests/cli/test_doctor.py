"""`hookyard doctor` against the test Redis: all good, then each way it can be unwell (AOF off, no workers, no or
expiring secrets, a broken handler module, no Redis at all)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dramatiq
import orjson
import pytest
import redis

from processor.broker import build_broker
from processor.cli import main
from processor.devtools.embedded_redis import free_port
from shared import keys
from tests.conftest import TEST_SECRET
from tests.fixtures import cli_state


@pytest.fixture
def healthy(monkeypatch: pytest.MonkeyPatch, redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> redis.Redis:
    """A secret, the test Redis (AOF on, noeviction), importable handlers and one worker that just swept."""
    cli_state.use_environment(
        monkeypatch,
        REDIS_URL=redis_url,
        WORKOS_WEBHOOK_SECRET=TEST_SECRET,
        HOOKYARD_HANDLERS=cli_state.MODULE,
        HOOKYARD_DATA_DIR=str(tmp_path / "data"),
    )
    redis_client.zadd(keys.WORKERS, {"test-host:1": int(time.time() * 1000)})
    return redis_client


@pytest.fixture
def appendonly_off(healthy: redis.Redis) -> Iterator[None]:
    healthy.config_set("appendonly", "no")
    try:
        yield
    finally:
        healthy.config_set("appendonly", "yes")


def lines(out: str) -> dict[str, str]:
    """Check name -> its line."""
    return {line.split()[1]: line for line in out.splitlines()}


def test_all_good_is_all_ticks_and_exit_0(healthy: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 0

    found = lines(capsys.readouterr().out)
    assert list(found) == [
        "secrets", "redis", "persistence", "eviction", "clock", "handlers", "workers", "reconcile", "broker"
    ]  # fmt: skip
    assert all(line.startswith("✓ ") for line in found.values()), found
    assert "workos: 1 secret" in found["secrets"]
    assert TEST_SECRET not in found["secrets"]
    assert "appendonly yes" in found["persistence"]
    assert "maxmemory-policy noeviction" in found["eviction"]
    assert "cli.users" in found["handlers"]
    assert "1 worker process alive" in found["workers"]
    assert "the store's Redis answered" in found["broker"] and "0 wake-ups queued" in found["broker"]


def test_json(healthy: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--json"]) == 0

    document = orjson.loads(capsys.readouterr().out)
    assert document["ok"] is True
    assert [(c["name"], c["status"]) for c in document["checks"]] == [
        (name, "ok")
        for name in (
            "secrets",
            "redis",
            "persistence",
            "eviction",
            "clock",
            "handlers",
            "workers",
            "reconcile",
            "broker",
        )
    ]
    assert all(c["hint"] is None for c in document["checks"])


def test_aof_off_fails_with_a_hint(appendonly_off: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor"]) == 1

    line = lines(capsys.readouterr().out)["persistence"]
    assert line.startswith("✗ persistence  appendonly no: a Redis restart loses accepted events — ")
    assert "appendonly yes" in line


def test_aof_off_in_json(appendonly_off: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--json"]) == 1

    document = orjson.loads(capsys.readouterr().out)
    assert document["ok"] is False
    [persistence] = [c for c in document["checks"] if c["name"] == "persistence"]
    assert persistence["status"] == "fail"
    assert "appendonly yes" in persistence["hint"]


def test_eviction_policy_other_than_noeviction_fails(healthy: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    healthy.config_set("maxmemory-policy", "allkeys-lru")
    try:
        assert main(["doctor"]) == 1
    finally:
        healthy.config_set("maxmemory-policy", "noeviction")

    assert lines(capsys.readouterr().out)["eviction"].startswith("✗ eviction     maxmemory-policy allkeys-lru")


def test_no_worker_alive_fails(healthy: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    healthy.delete(keys.WORKERS)

    assert main(["doctor"]) == 1

    line = lines(capsys.readouterr().out)["workers"]
    assert line.startswith("✗ workers      no worker swept in the last 15 s")
    assert "hookyard worker" in line


def test_a_reconcile_cursor_falling_behind_warns(
    healthy: redis.Redis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given continuous reconciliation every 10 s (settle 60 s)
    monkeypatch.setenv("WORKOS_API_KEY", "sk_test_doctor")
    monkeypatch.setenv("HOOKYARD_RECONCILE_INTERVAL", "10s")
    now_ms = int(time.time() * 1000)

    # When no round has finished yet, Then doctor warns (and does not fail)
    assert main(["doctor"]) == 0
    assert lines(capsys.readouterr().out)["reconcile"].startswith("! reconcile    on, but no round has finished yet")

    # When the cursor is a settle and an interval behind, Then all is well, with the missed events counted
    healthy.hset(keys.RECONCILE_CURSOR, mapping={"after": "event_1", "position_ms": now_ms - 70_000})
    healthy.hset(keys.RECONCILE_STATS, "missed:workos", 4)
    assert main(["doctor"]) == 0
    line = lines(capsys.readouterr().out)["reconcile"]
    assert line.startswith("✓ reconcile    cursor 1m") and line.endswith("4 events missed by webhooks so far")

    # When the cursor is an hour behind (rounds failing), Then it warns with a hint
    healthy.hset(keys.RECONCILE_CURSOR, "position_ms", now_ms - 3_600_000)
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert lines(out)["reconcile"].startswith("! reconcile    cursor 1h")
    assert "hookyard_reconcile_requests_total" in out
    assert "sk_test_doctor" not in out


def test_secrets_are_counted_never_shown_and_a_coming_expiry_warns(
    healthy: redis.Redis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    soon = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    gone = "2020-01-01T00:00:00Z"
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", f"whsec_expired_one@{gone},whsec_rotating_out@{soon}")

    # A warning is not a failure
    assert main(["doctor"]) == 0

    line = lines(capsys.readouterr().out)["secrets"]
    assert line.startswith("! secrets      workos: 2 secrets (1 expired), next expiry ")
    assert "add its successor" in line
    assert "whsec_" not in line


def test_no_valid_secret_fails(
    healthy: redis.Redis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("WORKOS_WEBHOOK_SECRET")

    assert main(["doctor"]) == 1

    assert lines(capsys.readouterr().out)["secrets"].startswith("✗ secrets      no source has a secret")


def test_the_secret_hookyard_dev_saved_counts(
    healthy: redis.Redis, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("WORKOS_WEBHOOK_SECRET")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "webhook-secret").write_text("whsec_saved_by_dev_0123\n")

    assert main(["doctor"]) == 0

    line = lines(capsys.readouterr().out)["secrets"]
    assert line.startswith("✓ secrets      workos: 1 secret, the development one `hookyard dev` keeps in ")
    assert "whsec_saved" not in line


def test_a_handler_module_that_does_not_import_fails(
    healthy: redis.Redis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOOKYARD_HANDLERS", "no_such_handlers_module")

    assert main(["doctor"]) == 1

    line = lines(capsys.readouterr().out)["handlers"]
    assert line.startswith("✗ handlers     cannot import handler module 'no_such_handlers_module' (HOOKYARD_HANDLERS)")


def test_handlers_are_what_the_live_workers_loaded(
    healthy: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a worker that loaded cli_state's handlers (and no other), while this shell could import nothing
    healthy.delete(keys.WORKERS)
    cli_state.sweep_as_a_worker(redis_url, cli_state.registry())
    monkeypatch.setenv("HOOKYARD_HANDLERS", "no_such_handlers_module")

    assert main(["doctor"]) == 0

    line = lines(capsys.readouterr().out)["handlers"]
    assert line == "✓ handlers     3 loaded by 1 live worker: cli.audit, cli.strict, cli.users"


def test_workers_with_different_handler_sets_warn(healthy: redis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    healthy.delete(keys.WORKERS)
    cli_state.publish_as_worker(healthy, "old:1", cli_state.registry())
    cli_state.publish_as_worker(healthy, "old:2", cli_state.registry())
    cli_state.publish_as_worker(healthy, "new:1", cli_state.registry(max_attempts=9), hookyard="0.2.0")

    assert main(["doctor"]) == 0  # a warning: a rolling deploy is not a failure

    line = lines(capsys.readouterr().out)["handlers"]
    assert line.startswith(
        "! handlers     the live workers loaded different handler sets"
        " (A: 3 handlers on 2 live workers; B: 3 handlers on 1 live worker) — "
    )
    assert line.endswith("a rolling deploy in progress? `hookyard handlers` shows which worker runs what")


def test_unreachable_redis_fails_and_skips_what_depends_on_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    cli_state.use_environment(
        monkeypatch, REDIS_URL=f"redis://:hunter2hunter2@127.0.0.1:{port}/0", WORKOS_WEBHOOK_SECRET=TEST_SECRET
    )

    assert main(["doctor"]) == 1

    out = capsys.readouterr().out
    found = lines(out)
    assert found["redis"] == (
        f"✗ redis        cannot reach Redis at redis://:****@127.0.0.1:{port}/0"
        " — is it running? check REDIS_URL (Connection refused)"
    )
    skipped = ("persistence", "eviction", "clock", "workers", "reconcile", "broker")
    assert [found[name].split()[0] for name in skipped] == ["-"] * 6
    assert "hunter2" not in out


def test_a_rabbitmq_broker_is_checked_and_its_queue_counted(
    healthy: redis.Redis, rabbitmq_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given wake-ups on the suite's RabbitMQ, with three waiting in the queue the workers declare
    monkeypatch.setenv("HOOKYARD_BROKER_URL", rabbitmq_url)
    broker = build_broker(rabbitmq_url)
    dramatiq.Actor(lambda: None, broker=broker, actor_name="doctor_test", queue_name=keys.WAKE_QUEUE_NAME,
                   priority=0, options={})  # fmt: skip
    for _ in range(3):
        broker.enqueue(dramatiq.Message(queue_name=keys.WAKE_QUEUE_NAME, actor_name="doctor_test", args=(),
                                        kwargs={}, options={}))  # fmt: skip
    broker.close()
    # When the doctor runs
    assert main(["doctor"]) == 0
    # Then the broker line names RabbitMQ, without its password, and counts the queue
    out = capsys.readouterr().out
    line = lines(out)["broker"]
    assert line.startswith("✓ broker       rabbitmq at amqp://guest:***@127.0.0.1:")
    assert line.endswith("3 wake-ups queued")
    assert "guest:guest" not in out


def test_an_unreachable_rabbitmq_fails_the_broker_check_without_its_password(
    healthy: redis.Redis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a broker URL where nothing listens
    monkeypatch.setenv("HOOKYARD_BROKER_URL", f"amqp://hy:hunter2hunter2@127.0.0.1:{free_port()}/")
    # When the doctor runs, then it fails on the broker alone, and never shows the password
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    found = lines(out)
    assert [name for name, line in found.items() if not line.startswith("✓")] == ["broker"]
    assert "no handler runs until it does" in found["broker"]
    assert "hunter2" not in out


def test_the_mirror_must_be_migrated(
    healthy: redis.Redis, mirror_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a WorkOS mirror whose database was never migrated
    monkeypatch.setenv("HOOKYARD_MIRROR_URL", mirror_url)
    # Then doctor fails on it, saying what to run
    assert main(["doctor"]) == 1
    line = lines(capsys.readouterr().out)["mirror"]
    assert line.startswith("✗ ") and "revision none" in line and "hookyard mirror migrate" in line
    # When it is migrated, then doctor is happy with it
    assert main(["mirror", "migrate"]) == 0
    capsys.readouterr()
    assert main(["doctor"]) == 0
    assert lines(capsys.readouterr().out)["mirror"].startswith("✓ mirror")


def test_an_unreachable_mirror_fails(
    healthy: redis.Redis, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a mirror URL where no PostgreSQL listens
    monkeypatch.setenv("HOOKYARD_MIRROR_URL", f"postgresql+psycopg://hookyard:pw@127.0.0.1:{free_port()}/hookyard")
    assert main(["doctor"]) == 1
    line = lines(capsys.readouterr().out)["mirror"]
    # Then the line says so, without the password
    assert line.startswith("✗ ") and "did not answer" in line and ":pw@" not in line
