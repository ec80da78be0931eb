"""deploy/compose.cluster.yaml: six Redis nodes (deploy/redis.conf plus the cluster flags), a one-shot job that
joins them, RabbitMQ, and the receiver and workers set up for a cluster; checked offline, as compose.yaml is."""

from __future__ import annotations

import re
import shlex
import subprocess
from typing import Any

import pytest
import yaml

from shared.settings import Settings
from tests.deploy import dockerfile
from tests.deploy.paths import COMPOSE, COMPOSE_CLUSTER, DEPLOY
from tests.deploy.settings_check import CONTAINER_HOST, WORKER_DRAIN_S, problems
from tests.deploy.test_deploy_files import environment, interpolated, seconds

NODES = [f"redis-{i}" for i in range(1, 7)]


def services() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE_CLUSTER.read_text())
    found: dict[str, Any] = document["services"]
    return found


def init_script() -> str:
    """The init job's shell script as the container runs it (compose turns `$$` into `$`)."""
    [script] = services()["redis-cluster-init"]["command"]
    return str(script).replace("$$", "$")


def test_compose_runs_six_nodes_an_init_job_rabbitmq_receiver_and_worker() -> None:
    # Given the cluster compose file / Then it has exactly these services, each long-running one checked for health
    found = services()
    assert set(found) == {*NODES, "redis-cluster-init", "rabbitmq", "receiver", "worker"}
    for name, service in found.items():
        if name == "redis-cluster-init":
            assert service["restart"] == "no"
            continue
        assert service["healthcheck"]["test"], f"{name} has no healthcheck"
        assert service["restart"] == "unless-stopped", name


@pytest.mark.parametrize("name", NODES)
def test_each_node_runs_redis_conf_in_cluster_mode_announcing_its_name_with_its_own_volume(name: str) -> None:
    node = services()[name]
    # Then it runs deploy/redis.conf (AOF, noeviction), mounted read-only
    [conf] = [v for v in node["volumes"] if v.startswith("./redis.conf:")]
    target = conf.split(":")[1]
    assert (COMPOSE_CLUSTER.parent / "redis.conf").resolve() == DEPLOY / "redis.conf"
    command = node["command"]
    assert command[:2] == ["redis-server", target]
    # And the cluster flags: enabled, its node table in its volume, announcing the service name to clients
    flags = dict(zip(command[2::2], command[3::2], strict=True))
    assert flags["--cluster-enabled"] == "yes"
    assert flags["--cluster-config-file"].startswith("/data/")
    assert flags["--cluster-announce-hostname"] == name
    assert flags["--cluster-preferred-endpoint-type"] == "hostname"
    assert f"{name}-data:/data" in node["volumes"]
    assert node["image"] == yaml.safe_load(COMPOSE.read_text())["services"]["redis"]["image"]


def test_the_init_job_creates_the_cluster_from_every_node_once_and_is_valid_shell() -> None:
    init = services()["redis-cluster-init"]
    script = init_script()
    # Then it waits for every node, creates 3 primaries with a replica each from all six, and skips a formed cluster
    assert {name: dep["condition"] for name, dep in init["depends_on"].items()} == dict.fromkeys(
        NODES, "service_healthy"
    )
    assert "redis-cli --cluster create" in script and "--cluster-replicas 1" in script
    assert re.search(r"for node in " + " ".join(NODES) + ";", script)
    assert script.index("cluster_state:ok") < script.index("--cluster create")
    # And the shell accepts it
    done = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True, timeout=10, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("name", ["receiver", "worker"])
def test_hookyard_services_are_set_up_for_the_cluster_and_start_after_it(name: str) -> None:
    found = services()
    service = found[name]
    # Then they share compose.yaml's image and lock-down, and start once the cluster is formed and RabbitMQ is up
    plain = yaml.safe_load(COMPOSE.read_text())["services"][name]
    for key in ("build", "image", "command", "read_only", "cap_drop", "security_opt", "init", "tmpfs"):
        assert service[key] == plain[key], key
    assert service.get("user") in (None, str(dockerfile.runtime_uid()))
    assert service["depends_on"] == {
        "redis-cluster-init": {"condition": "service_completed_successfully"},
        "rabbitmq": {"condition": "service_healthy"},
    }
    assert seconds(service["stop_grace_period"]) > WORKER_DRAIN_S
    # And their settings are a cluster of the six nodes, RabbitMQ with its own user, shards and a replica per 200
    env = environment(service)
    assert problems(env, require_secret=name == "receiver") == []
    assert env["HOOKYARD_HOST"] == CONTAINER_HOST
    settings = Settings.from_env(env, require_secret=False)
    assert settings.redis_cluster and settings.min_replicas == 1 and settings.inbox_shards == 4
    assert env["REDIS_URL"] == "redis+cluster://" + ",".join(f"{node}:6379" for node in NODES)
    rabbitmq = found["rabbitmq"]["environment"]
    user, password = rabbitmq["RABBITMQ_DEFAULT_USER"], interpolated(rabbitmq["RABBITMQ_DEFAULT_PASS"])
    assert settings.broker_url == f"amqp://{user}:{password}@rabbitmq:5672/%2F"


def test_rabbitmq_keeps_its_data_and_is_probed() -> None:
    rabbitmq = services()["rabbitmq"]
    assert "rabbitmq-data:/var/lib/rabbitmq" in rabbitmq["volumes"]
    assert shlex.join(rabbitmq["healthcheck"]["test"]) == "CMD rabbitmq-diagnostics -q ping"
    assert "ports" not in rabbitmq  # only the Hookyard services reach it
