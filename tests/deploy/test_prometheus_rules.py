"""deploy/prometheus: the config and the alert rules pass promtool, each alert fires on its failure (promtool's
rule unit tests in alerts_test.yml), and every alert names real metrics and says what to do."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.exposed_metrics import exact_label_matchers, exposed_metric_names, metric_names_in
from tests.deploy.label_values import unknown_label_values
from tests.deploy.paths import ALERT_RULES, PROMETHEUS_CONFIG

UNIT_TESTS = Path(__file__).with_name("alerts_test.yml")


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERT_RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_accepts_the_alert_rules(promtool: str) -> None:
    result = run([promtool, "check", "rules", str(ALERT_RULES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_compose_prometheus_config_and_finds_the_rules(promtool: str) -> None:
    result = run([promtool, "check", "config", str(PROMETHEUS_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout + result.stderr


def test_each_alert_fires_on_its_failure_and_not_when_healthy(promtool: str, tmp_path: Path) -> None:
    # Given the shipped rules without their annotations (prose, which promtool would compare word for word)
    document = yaml.safe_load(ALERT_RULES.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    shutil.copy(UNIT_TESTS, tmp_path / UNIT_TESTS.name)
    # When promtool runs the scenarios in alerts_test.yml
    result = run([promtool, "test", "rules", UNIT_TESTS.name], cwd=tmp_path)
    # Then every alert is present exactly when the scenario says
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_makes_it_fire() -> None:
    scenarios = yaml.safe_load(UNIT_TESTS.read_text())["tests"]
    fired = {
        check["alertname"]
        for scenario in scenarios
        for check in scenario.get("alert_rule_test", [])
        if check.get("exp_alerts")
    }
    assert {rule["alert"] for rule in alert_rules()} - fired == set()


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_alert_says_how_bad_what_happened_and_what_to_do(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in ("critical", "warning")
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert "What to do:" in annotations["description"]
    assert rule["alert"].startswith("Hookyard")


def test_alerts_use_only_metrics_and_label_values_the_code_exposes() -> None:
    exposed = exposed_metric_names()
    # The scan of the code found the metrics at all (guards this test against passing on an empty set).
    assert {"hookyard_receiver_requests_total", "hookyard_handler_runs_total", "hookyard_store_up"} <= exposed
    unknown = {
        rule["alert"]: sorted(metric_names_in(rule["expr"]) - exposed)
        for rule in alert_rules()
        if metric_names_in(rule["expr"]) - exposed
    }
    assert unknown == {}
    wrong_values = {rule["alert"]: unknown_label_values(exact_label_matchers(rule["expr"])) for rule in alert_rules()}
    assert {alert: values for alert, values in wrong_values.items() if values} == {}


def test_scrape_jobs_are_the_ones_the_alerts_name() -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"hookyard-receiver", "hookyard-worker"}
    [target_down] = [rule for rule in alert_rules() if rule["alert"] == "HookyardTargetDown"]
    assert all(job in target_down["expr"] for job in jobs)
    assert config["rule_files"] == [ALERT_RULES.name]
