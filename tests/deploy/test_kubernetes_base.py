"""deploy/kubernetes/base: the rendered base validates against the Kubernetes API schemas, its references
resolve, its pods run locked down with the probes, ports and grace periods the processes need, and its
Prometheus scrape config finds exactly the metrics ports."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from receiver.server import GRACEFUL_SHUTDOWN_S
from tests.deploy import dockerfile
from tests.deploy.kustomize_base import kustomization, render
from tests.deploy.paths import KUBERNETES_BASE, PROMETHEUS_CONFIG
from tests.deploy.relabel import pod_port_targets, relabel
from tests.deploy.settings_check import CONTAINER_HOST, WORKER_DRAIN_S, problems

SECRET_EXAMPLE = KUBERNETES_BASE / "secret-example.yaml"
# The oldest Kubernetes the base is meant for, and the newest the bundled schemas know.
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())

Object = dict[str, Any]


def objects() -> list[Object]:
    return render(KUBERNETES_BASE)


def one(kind: str, name: str) -> Object:
    [found] = [o for o in objects() if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def container(deployment: Object) -> Object:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    return only


def env_literals(deployment: Object) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(deployment).get("env", []) if "value" in e}


def port_number(deployment: Object, name: str) -> int:
    [number] = [p["containerPort"] for p in container(deployment)["ports"] if p["name"] == name]
    return int(number)


def secret_example() -> Object:
    document: Object = yaml.safe_load(SECRET_EXAMPLE.read_text())
    return document


def test_the_base_lists_every_manifest_except_the_secret_example() -> None:
    listed = set(kustomization(KUBERNETES_BASE)["resources"])
    manifests = {p.name for p in KUBERNETES_BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == manifests - {SECRET_EXAMPLE.name}


def test_the_base_has_the_objects_hookyard_needs_once_each() -> None:
    names = [(o["kind"], o["metadata"]["name"]) for o in objects()]
    assert len(names) == len(set(names))
    assert set(names) == {
        ("ConfigMap", "hookyard-config"),
        ("ConfigMap", "hookyard-prometheus"),
        ("Deployment", "hookyard-receiver"),
        ("Service", "hookyard-receiver"),
        ("HorizontalPodAutoscaler", "hookyard-receiver"),
        ("PodDisruptionBudget", "hookyard-receiver"),
        ("Deployment", "hookyard-worker"),
        ("PodDisruptionBudget", "hookyard-worker"),
    }


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_api_schema(version: str) -> None:
    errors = []
    for obj in [*objects(), secret_example()]:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(exc.message)
    assert errors == []


def test_selectors_and_references_resolve() -> None:
    deployments = {o["metadata"]["name"]: o for o in objects() if o["kind"] == "Deployment"}
    config_maps = {o["metadata"]["name"] for o in objects() if o["kind"] == "ConfigMap"}
    secret = secret_example()
    for deployment in deployments.values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        for source in container(deployment).get("envFrom", []):
            assert source["configMapRef"]["name"] in config_maps
        for entry in container(deployment).get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
    for obj in objects():
        selector = obj.get("spec", {}).get("selector")
        if obj["kind"] in ("Service", "PodDisruptionBudget"):
            match = selector.get("matchLabels", selector)
            selected = [
                name
                for name, d in deployments.items()
                if match.items() <= d["spec"]["template"]["metadata"]["labels"].items()
            ]
            assert selected == [obj["metadata"]["name"]], f"{obj['kind']} {obj['metadata']['name']} selects {selected}"
        if obj["kind"] == "HorizontalPodAutoscaler":
            assert obj["spec"]["scaleTargetRef"]["name"] in deployments
    service = one("Service", "hookyard-receiver")
    receiver = one("Deployment", "hookyard-receiver")
    for port in service["spec"]["ports"]:
        assert port_number(receiver, port["targetPort"]) > 0


@pytest.mark.parametrize("name", ["hookyard-receiver", "hookyard-worker"])
def test_pods_run_as_the_image_user_locked_down_with_resources(name: str) -> None:
    deployment = one("Deployment", name)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == dockerfile.runtime_uid()
    assert pod["automountServiceAccountToken"] is False
    box = container(deployment)
    assert box["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    # A read-only root needs a writable /tmp (the worker's prometheus_client multiprocess files live there).
    mounts = {m["mountPath"]: m["name"] for m in box["volumeMounts"]}
    [tmp] = [v for v in pod["volumes"] if v["name"] == mounts["/tmp"]]
    assert "emptyDir" in tmp
    for kind in ("requests", "limits"):
        assert set(box["resources"][kind]) == {"cpu", "memory"}
    assert box["command"] == ["hookyard", name.removeprefix("hookyard-")]


@pytest.mark.parametrize("name", ["hookyard-receiver", "hookyard-worker"])
def test_container_environment_is_valid_hookyard_settings(name: str) -> None:
    deployment = one("Deployment", name)
    env: dict[str, str] = {}
    for source in container(deployment).get("envFrom", []):
        env.update(one("ConfigMap", source["configMapRef"]["name"])["data"])
    for entry in container(deployment).get("env", []):
        env[entry["name"]] = entry.get("value", "whsec_from_a_secret")
    assert problems(env, require_secret=name == "hookyard-receiver") == []
    assert env["HOOKYARD_HOST"] == CONTAINER_HOST


def test_receiver_probes_and_metrics_are_on_the_ops_port_only() -> None:
    receiver = one("Deployment", "hookyard-receiver")
    box = container(receiver)
    ops = int(env_literals(receiver)["HOOKYARD_OPS_PORT"])
    assert port_number(receiver, "ops") == ops
    assert port_number(receiver, "http") == int(env_literals(receiver)["HOOKYARD_PORT"])
    assert box["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "ops"}
    assert box["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "ops"}
    annotations = receiver["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(ops),
        "prometheus.io/path": "/metrics",
    }
    assert [p["targetPort"] for p in one("Service", "hookyard-receiver")["spec"]["ports"]] == ["http"]


def test_receiver_scales_on_cpu_from_two_pods_and_keeps_one_through_disruptions() -> None:
    assert "replicas" not in one("Deployment", "hookyard-receiver")["spec"], "the HPA owns the replica count"
    hpa = one("HorizontalPodAutoscaler", "hookyard-receiver")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    [metric] = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert one("PodDisruptionBudget", "hookyard-receiver")["spec"]["minAvailable"] == 1


def test_workers_run_two_processes_per_pod_are_probed_on_metrics_and_may_drain() -> None:
    worker = one("Deployment", "hookyard-worker")
    env = env_literals(worker)
    assert env["HOOKYARD_WORKERS"] == "2"
    metrics = port_number(worker, "metrics")
    assert metrics == int(env["HOOKYARD_WORKER_METRICS_PORT"]) == 9191
    assert container(worker)["livenessProbe"]["tcpSocket"] == {"port": "metrics"}
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > WORKER_DRAIN_S
    assert worker["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(metrics)
    assert one("PodDisruptionBudget", "hookyard-worker")["spec"]["minAvailable"] == 1


def test_receiver_grace_period_covers_pre_stop_and_graceful_shutdown() -> None:
    receiver = one("Deployment", "hookyard-receiver")
    pre_stop_s = int(container(receiver)["lifecycle"]["preStop"]["exec"]["command"][-1])
    grace_s = receiver["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace_s > pre_stop_s + GRACEFUL_SHUTDOWN_S


def test_secret_example_is_only_a_placeholder() -> None:
    values = secret_example()["stringData"].values()
    assert values and all(value.startswith("REPLACE_ME") for value in values)


# --- the Kubernetes scrape config -----------------------------------------------------------------------------


def kubernetes_prometheus_config() -> Object:
    document: Object = yaml.safe_load(one("ConfigMap", "hookyard-prometheus")["data"]["prometheus.yml"])
    return document


def test_scrape_jobs_select_exactly_the_metrics_ports() -> None:
    config = kubernetes_prometheus_config()
    compose_jobs = {job["job_name"] for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]}
    assert {job["job_name"] for job in config["scrape_configs"]} == compose_jobs, "the alerts name these jobs"
    deployments = [o for o in objects() if o["kind"] == "Deployment"]
    selected = {}
    for job in config["scrape_configs"]:
        assert [sd["role"] for sd in job["kubernetes_sd_configs"]] == ["pod"]
        kept = [relabel(t, job["relabel_configs"]) for d in deployments for t in pod_port_targets(d)]
        selected[job["job_name"]] = sorted(
            (t["__meta_kubernetes_pod_container_port_number"], t["__metrics_path__"]) for t in kept if t is not None
        )
    assert selected == {
        "hookyard-receiver": [(str(port_number(one("Deployment", "hookyard-receiver"), "ops")), "/metrics")],
        "hookyard-worker": [(str(port_number(one("Deployment", "hookyard-worker"), "metrics")), "/metrics")],
    }


def test_promtool_accepts_the_scrape_config(promtool: str, tmp_path: Path) -> None:
    # Debian's promtool is built without Kubernetes discovery: check everything else with static targets.
    config = kubernetes_prometheus_config()
    for job in config["scrape_configs"]:
        del job["kubernetes_sd_configs"]
        job["static_configs"] = [{"targets": ["127.0.0.1:9"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
