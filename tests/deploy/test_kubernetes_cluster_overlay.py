"""deploy/kubernetes/overlays/cluster: the base pointed at a Redis Cluster and RabbitMQ, rendered offline; it
validates against the Kubernetes API schemas, its settings are ones Hookyard accepts for a cluster, and it
changes nothing of the base but those settings."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from shared.settings import Settings
from tests.deploy.kustomize_base import merged, render
from tests.deploy.paths import KUBERNETES_BASE, KUBERNETES_CLUSTER_OVERLAY
from tests.deploy.settings_check import problems

KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
SECRET_EXAMPLE = KUBERNETES_CLUSTER_OVERLAY / "secret-example.yaml"

Object = dict[str, Any]


def secret_values() -> dict[str, str]:
    document: Object = yaml.safe_load(SECRET_EXAMPLE.read_text())
    values: dict[str, str] = document["stringData"]
    return values


def deployment_env(objects: list[Object], name: str) -> dict[str, str]:
    """What the container of Deployment `name` gets: its ConfigMaps, then its env (Secret keys from the example)."""
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    [box] = by_name["Deployment", name]["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in box.get("envFrom", []):
        env.update(by_name["ConfigMap", source["configMapRef"]["name"]]["data"])
    for entry in box.get("env", []):
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        env[entry["name"]] = secret_values()[ref["key"]] if ref else entry["value"]
    return env


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_api_schema(version: str) -> None:
    # Given the overlay rendered, and its Secret example
    objects = [*render(KUBERNETES_CLUSTER_OVERLAY), yaml.safe_load(SECRET_EXAMPLE.read_text())]

    # When each object is validated / Then none is rejected
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


@pytest.mark.parametrize("name", ["hookyard-receiver", "hookyard-worker"])
def test_both_process_kinds_get_a_cluster_store_a_broker_shards_and_replicas(name: str) -> None:
    # Given the environment the overlay gives the container
    env = deployment_env(render(KUBERNETES_CLUSTER_OVERLAY), name)

    # When Hookyard reads it / Then it accepts it as a cluster with RabbitMQ for the wake-ups
    assert problems(env, require_secret=name == "hookyard-receiver") == []
    settings = Settings.from_env(env, require_secret=False)
    assert settings.redis_cluster
    assert settings.broker_url.startswith("amqp://")
    assert settings.inbox_shards == 4
    assert settings.min_replicas == 1
    # And every seed node of REDIS_URL is one of the six nodes of the external cluster's headless service
    seeds = env["REDIS_URL"].removeprefix("redis+cluster://").split(",")
    assert seeds == [f"hookyard-redis-{i}.hookyard-redis:6379" for i in range(6)]


def test_the_overlay_changes_only_the_store_settings_of_the_base() -> None:
    # Given the base and the overlay, rendered
    base = render(KUBERNETES_BASE)
    overlay = render(KUBERNETES_CLUSTER_OVERLAY)

    # Then they hold the same objects, and apart from the ConfigMap's store settings and the broker's Secret
    # reference they are equal
    assert [(o["kind"], o["metadata"]["name"]) for o in overlay] == [(o["kind"], o["metadata"]["name"]) for o in base]
    changed = {"REDIS_URL", "HOOKYARD_INBOX_SHARDS", "HOOKYARD_MIN_REPLICAS"}
    for before, after in zip(base, overlay, strict=True):
        if before["kind"] == "ConfigMap" and before["metadata"]["name"] == "hookyard-config":
            assert {k for k in after["data"] if after["data"][k] != before["data"].get(k)} == changed
        elif before["kind"] == "Deployment":
            [box] = after["spec"]["template"]["spec"]["containers"]
            broker = [e for e in box["env"] if e["name"] == "HOOKYARD_BROKER_URL"]
            assert broker == [{"name": "HOOKYARD_BROKER_URL", "valueFrom": {"secretKeyRef": {
                "name": "hookyard-secrets", "key": "HOOKYARD_BROKER_URL"}}}]  # fmt: skip
            without = [e for e in box["env"] if e["name"] != "HOOKYARD_BROKER_URL"]
            [original] = before["spec"]["template"]["spec"]["containers"]
            assert without == original["env"] and {**box, "env": without} == original
        else:
            assert after == before


def test_strategic_merge_merges_named_items_and_replaces_the_rest() -> None:
    # Given a container list and a patch that adds an env entry to one container and changes a scalar
    target = {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}], "image": "i:1"}, {"name": "b"}]}
    patch = {"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}], "image": "i:2"}]}

    # When merged
    result = merged(target, patch)

    # Then the named items merged by name, order kept, and the scalar replaced
    assert result == {
        "containers": [
            {"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}], "image": "i:2"},
            {"name": "b"},
        ]
    }
