"""The CLI on a Redis Cluster reads every primary: the same scenario played on one server and on a cluster shows
the same events, dead letters and counts (the keys of one scenario spread over all three primaries)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import redis
from redis.crc import key_slot

from processor.cli import main
from processor.devtools.embedded_cluster import EmbeddedCluster
from processor.testing import Harness
from shared import keys
from tests.conftest import StoreUnderTest
from tests.fixtures import cli_state
from tests.fixtures.cli_state import Scenario

pytestmark = pytest.mark.slow


@pytest.fixture
def played(
    store: StoreUnderTest, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[StoreUnderTest, Scenario]]:
    env = {"REDIS_URL": store.url, "HOOKYARD_HANDLERS": cli_state.MODULE}
    if store.kind == "cluster":
        env["HOOKYARD_BROKER_URL"] = redis_url  # wake-ups need a plain Redis beside a cluster
    cli_state.use_environment(monkeypatch, **env)
    harness = Harness(cli_state.HANDLERS, redis_url=store.url)
    yield store, cli_state.build(harness)
    harness.close()


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main([*argv, "--json"]) == 0
    return orjson.loads(capsys.readouterr().out)


def test_stats_events_and_dead_letters_read_every_node(
    played: tuple[StoreUnderTest, Scenario], capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    store, s = played
    # Given the scenario (on a cluster, its shards' keys sit on all three primaries)
    if store.kind == "cluster":
        cluster: EmbeddedCluster = request.getfixturevalue("redis_cluster")
        homes = {cluster.port_for_key(keys.stats_key(shard)) for shard in range(keys.SHARDS)}
        assert len(homes) == 3
    # When the operator lists events, dead letters and one event
    listed = run_json(capsys, "events", "list")
    letters = run_json(capsys, "dlq", "list")
    shown = run_json(capsys, "events", "show", s.dead)
    # Then every event and the dead letter are there, wherever their keys live
    ids = {row["event_id"] for row in listed["events"]}
    assert ids >= {s.done, s.dead, s.newer, s.late, s.pending, s.connection}, ids
    assert [row["event_id"] for row in letters["letters"]] == [s.dead]
    assert {h["handler"]: h["status"] for h in shown["handlers"]}["cli.users"] == "dead"
    # And `hookyard stats` adds up every shard's counters (the same numbers as tests/cli/test_stats.py)
    document = run_json(capsys, "stats")
    users = document["handlers"]["cli.users"]
    assert (users["pending"], users["dead"], users["skipped"]) == (1, 1, 0)
    assert (document["handlers"]["cli.strict"]["pending"], document["handlers"]["cli.strict"]["skipped"]) == (1, 1)


def test_doctor_checks_every_node_of_a_cluster(
    cluster_url: str, redis_url: str, redis_cluster: EmbeddedCluster, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    cli_state.use_environment(
        monkeypatch, REDIS_URL=cluster_url, HOOKYARD_BROKER_URL=redis_url, HOOKYARD_MIN_REPLICAS="1",
        WORKOS_WEBHOOK_SECRET="whsec_test_0123456789abcdef",
    )  # fmt: skip

    def cluster_check() -> dict[str, Any]:
        main(["doctor", "--json"])
        found = orjson.loads(capsys.readouterr().out)["checks"]
        return next(c for c in found if c["name"] == "cluster")

    # Given a whole cluster, Then the cluster check passes
    assert cluster_check()["status"] == "ok"
    # When one primary's replica is down, Then it fails naming that primary (MIN_REPLICAS=1 cannot be met there)
    primary = redis_cluster.primaries()[0].port
    redis_cluster.kill(redis_cluster.replica_of(primary).port)
    check = cluster_check()
    assert check["status"] == "fail"
    assert f"127.0.0.1:{primary} has 0" in check["hint"]


def test_doctor_finds_a_slot_left_mid_migration(
    cluster_url: str, redis_url: str, redis_cluster: EmbeddedCluster, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    cli_state.use_environment(
        monkeypatch, REDIS_URL=cluster_url, HOOKYARD_BROKER_URL=redis_url,
        WORKOS_WEBHOOK_SECRET="whsec_test_0123456789abcdef",
    )  # fmt: skip
    # Given a slot marked migrating on its primary and importing on another (a reshard that died half way)
    slot = key_slot(keys.stats_key(3).encode())
    source = redis_cluster.port_for_slot(slot)
    target = next(p for p in redis_cluster.primaries() if p.port != source)
    source_id = next(p.node_id for p in redis_cluster.primaries() if p.port == source)
    owner, other = redis.Redis(port=source), redis.Redis(port=target.port)
    try:
        other.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        owner.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
        # When the doctor looks
        main(["doctor", "--json"])
        check = next(c for c in orjson.loads(capsys.readouterr().out)["checks"] if c["name"] == "cluster")
        # Then it fails, naming the slot and how to repair it
        assert check["status"] == "fail"
        assert str(slot) in check["hint"] and "--cluster fix" in check["hint"]
    finally:
        for client in (owner, other):
            client.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
            client.close()
