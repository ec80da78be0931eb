"""Where the deployment files are."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
ALERT_RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "hookyard-dashboard.json"
KUBERNETES_BASE = DEPLOY / "kubernetes" / "base"
KUBERNETES_CLUSTER_OVERLAY = DEPLOY / "kubernetes" / "overlays" / "cluster"
COMPOSE_CLUSTER = DEPLOY / "compose.cluster.yaml"
