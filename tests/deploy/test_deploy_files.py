"""deploy/: every YAML and JSON file parses; the Dockerfile lints clean and runs as non-root; compose.yaml
wires Redis (with redis.conf), the receiver, the worker and Prometheus with healthchecks and volumes."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy import dockerfile
from tests.deploy.paths import COMPOSE, DEPLOY, DOCKERFILE, PROMETHEUS_CONFIG, ROOT
from tests.deploy.settings_check import CONTAINER_HOST, WORKER_DRAIN_S, problems

STRUCTURED = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml", ".json"))


@pytest.mark.parametrize("path", STRUCTURED, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_file_parses(path: Path) -> None:
    text = path.read_text()
    documents = [json.loads(text)] if path.suffix == ".json" else list(yaml.safe_load_all(text))
    assert [d for d in documents if d], f"{path} is empty"


def test_the_structured_files_are_all_found() -> None:
    names = {str(p.relative_to(DEPLOY)) for p in STRUCTURED}
    assert {"compose.yaml", "prometheus/alerts.yml", "grafana/hookyard-dashboard.json"} <= names


# --- Dockerfile -----------------------------------------------------------------------------------------------


def test_dockerfile_lints_clean(hadolint: str) -> None:
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "warning", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Any inline ignore must say why, on the comment line above it.
    lines = DOCKERFILE.read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert i > 0 and lines[i - 1].lstrip().startswith("#"), f"line {i + 1}: an ignore without a reason"


def test_image_runs_as_a_fixed_non_root_user() -> None:
    assert dockerfile.runtime_uid() >= 1000


def test_image_is_multi_stage_from_python_311_slim_and_installs_the_pinned_package() -> None:
    first, builder, final = dockerfile.stages()
    base = dict(arg.split("=", 1) for keyword, arg in first if keyword == "ARG")["PYTHON_IMAGE"]
    assert base.startswith("python:3.11-slim")
    assert ("FROM", "${PYTHON_IMAGE} AS builder") in builder
    assert ("FROM", "${PYTHON_IMAGE}") in final
    installs = [arg for keyword, arg in builder if keyword == "RUN" and "pip install" in arg]
    assert installs and "-c constraints.txt ." in installs[0]
    # The final image gets the virtualenv, and nothing else from the build.
    copies = [arg for keyword, arg in final if keyword == "COPY"]
    assert copies == ["--from=builder /opt/hookyard /opt/hookyard"]


def test_image_copies_every_package_the_project_builds() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    built = {name for name in packages if any(Path(name).match(pattern) for pattern in patterns)}
    [_, builder, _] = dockerfile.stages()
    copied = {source for keyword, arg in builder if keyword == "COPY" for source in shlex.split(arg)[:-1]}
    assert built <= copied, "a package pyproject.toml builds is not copied into the image"
    assert {"pyproject.toml", "constraints.txt", pyproject["project"]["readme"]} <= copied
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert all(f"!{name}/" in ignore for name in built), "the build context excludes a package"


def test_image_runs_the_receiver_checks_its_health_and_exposes_both_ports() -> None:
    stage = dockerfile.stages()[-1]
    [cmd] = [json.loads(arg) for keyword, arg in stage if keyword == "CMD"]
    assert cmd == ["hookyard", "receiver"]
    [exposed] = [arg.split() for keyword, arg in stage if keyword == "EXPOSE"]
    assert set(exposed) == {"8000", "9191"}
    [healthcheck] = [arg for keyword, arg in stage if keyword == "HEALTHCHECK"]
    assert "/healthz" in healthcheck and '"python"' in healthcheck


# --- compose.yaml ---------------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def interpolated(value: str) -> str:
    """A compose value with `${VAR:-default}` as its default and `${VAR:?error}` (required) as a test value."""

    def one(match: re.Match[str]) -> str:
        operator, word = match[2], match[3]
        return "whsec_compose_placeholder" if operator == "?" else word or ""

    return re.sub(r"\$\{(\w+)(?::?([-?])([^}]*))?\}", one, value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    return {name: interpolated(str(value)) for name, value in service.get("environment", {}).items()}


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, f"unexpected duration {duration!r}"
    return int(match[1]) * (60 if match[2] == "m" else 1)


def test_compose_runs_redis_receiver_worker_and_prometheus_each_with_a_healthcheck() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", "receiver", "worker", "prometheus"}
    for name, service in services.items():
        assert service["healthcheck"]["test"], f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name
    assert set(compose()["volumes"]) == {"redis-data", "prometheus-data"}


def test_redis_runs_with_deploy_redis_conf_and_keeps_its_data_in_a_volume() -> None:
    redis = compose()["services"]["redis"]
    mounts = dict(volume.rsplit(":", 1)[0].split(":", 1) for volume in redis["volumes"] if volume.count(":") == 2)
    [(source, target)] = [(s, t) for s, t in mounts.items() if s.endswith(".conf")]
    assert (COMPOSE.parent / source).resolve() == DEPLOY / "redis.conf"
    assert redis["command"] == ["redis-server", target]
    assert "redis-data:/data" in redis["volumes"]
    conf = (DEPLOY / "redis.conf").read_text().splitlines()
    assert "appendonly yes" in conf and "maxmemory-policy noeviction" in conf


@pytest.mark.parametrize("name", ["receiver", "worker"])
def test_hookyard_services_share_the_image_wait_for_redis_and_have_valid_settings(name: str) -> None:
    services = compose()["services"]
    service = services[name]
    assert service["command"] == ["hookyard", name]
    assert (COMPOSE.parent / service["build"]["context"]).resolve() == ROOT
    assert (ROOT / service["build"]["dockerfile"]).resolve() == DOCKERFILE
    assert service["image"] == services["receiver"]["image"]
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    assert service.get("user") in (None, str(dockerfile.runtime_uid())), "compose must not run Hookyard as root"
    assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
    env = environment(service)
    assert env["HOOKYARD_HOST"] == CONTAINER_HOST
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert problems(env, require_secret=name == "receiver") == []
    assert seconds(service["stop_grace_period"]) > WORKER_DRAIN_S


def test_the_rabbitmq_override_gives_the_workers_a_healthy_broker_and_valid_settings() -> None:
    # deploy/compose.rabbitmq.yaml, merged over compose.yaml as `docker compose -f … -f …` merges maps
    override: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.rabbitmq.yaml").read_text())
    assert set(override["services"]) == {"rabbitmq", "worker"}
    rabbitmq = override["services"]["rabbitmq"]
    assert rabbitmq["healthcheck"]["test"] and rabbitmq.get("restart") == "unless-stopped"
    assert "rabbitmq-data:/var/lib/rabbitmq" in rabbitmq["volumes"] and "rabbitmq-data" in override["volumes"]
    worker = override["services"]["worker"]
    assert worker["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    env = {**environment(compose()["services"]["worker"]), **environment(worker)}
    assert env["HOOKYARD_BROKER_URL"].startswith("amqp://hookyard:")
    assert env["HOOKYARD_BROKER_URL"].endswith("@rabbitmq:5672/%2F")
    assert problems(env, require_secret=False) == []


def test_receiver_publishes_the_webhook_port_and_probes_healthz() -> None:
    receiver = compose()["services"]["receiver"]
    port = environment(receiver)["HOOKYARD_PORT"]
    assert [interpolated(p) for p in receiver["ports"]] == [f"{port}:{port}"]
    assert f"127.0.0.1:{port}/healthz" in " ".join(receiver["healthcheck"]["test"])


def test_worker_runs_two_processes_and_is_probed_on_its_metrics_port() -> None:
    worker = compose()["services"]["worker"]
    env = environment(worker)
    assert env["HOOKYARD_WORKERS"] == "2" or worker.get("deploy", {}).get("replicas") == 2
    assert f"('127.0.0.1', {env['HOOKYARD_WORKER_METRICS_PORT']})" in " ".join(worker["healthcheck"]["test"])


def test_prometheus_loads_the_shipped_config_and_rules_and_scrapes_the_services() -> None:
    services = compose()["services"]
    prometheus = services["prometheus"]
    mounts = {
        (COMPOSE.parent / source).resolve(): target
        for source, target in (volume.split(":")[:2] for volume in prometheus["volumes"])
        if source.startswith(".")
    }
    config_target = mounts[PROMETHEUS_CONFIG]
    assert f"--config.file={config_target}" in prometheus["command"]
    # rule_files are relative to the config: the rules must be mounted beside it under the same name.
    rules = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["rule_files"]
    for rule_file in rules:
        assert mounts[(PROMETHEUS_CONFIG.parent / rule_file).resolve()] == str(Path(config_target).parent / rule_file)
    assert "prometheus-data:/prometheus" in prometheus["volumes"]
    ports = {
        "receiver": environment(services["receiver"])["HOOKYARD_PORT"],
        "worker": environment(services["worker"])["HOOKYARD_WORKER_METRICS_PORT"],
    }
    jobs = yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    targets = {target for job in jobs for static in job["static_configs"] for target in static["targets"]}
    assert targets == {f"{service}:{port}" for service, port in ports.items()}
