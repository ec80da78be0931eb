"""deploy/grafana/hookyard-dashboard.json: a Grafana dashboard model whose every query goes to the chosen
Prometheus data source and names metrics the code exposes, and which shows every one of them."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.deploy.exposed_metrics import exact_label_matchers, exposed_metric_names, metric_names_in
from tests.deploy.label_values import unknown_label_values
from tests.deploy.paths import DASHBOARD

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_SERIES_SUFFIX = re.compile(r"_(total|bucket|sum|count|created)$")


def dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def panels() -> list[dict[str, Any]]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def queries() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel["targets"]]


def test_dashboard_is_a_grafana_model_with_a_prometheus_datasource_variable() -> None:
    model = dashboard()
    assert model["uid"] == "hookyard" and model["title"] == "Hookyard"
    assert isinstance(model["schemaVersion"], int) and model["schemaVersion"] >= 36
    assert model["id"] is None  # importable anywhere
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("source", "handler"):
        assert variables[name]["datasource"] == DATASOURCE
        assert metric_names_in(variables[name]["definition"]) <= exposed_metric_names()


def test_every_panel_queries_the_chosen_datasource_and_fits_the_grid() -> None:
    ids = [p["id"] for p in dashboard()["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE and target["expr"].strip(), panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]


def test_queries_use_only_metrics_and_label_values_the_code_exposes() -> None:
    unknown = sorted({name for query in queries() for name in metric_names_in(query)} - exposed_metric_names())
    assert unknown == []
    assert unknown_label_values({m for query in queries() for m in exact_label_matchers(query)}) == []


def test_every_metric_the_code_exposes_is_on_the_dashboard() -> None:
    families = {_SERIES_SUFFIX.sub("", name) for name in exposed_metric_names()}
    shown = {_SERIES_SUFFIX.sub("", name) for query in queries() for name in metric_names_in(query)}
    assert families - shown == set()
