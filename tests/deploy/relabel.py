"""Prometheus relabelling (keep, drop, replace) applied to the labels Kubernetes pod discovery would give, to
see which container ports a kubernetes_sd scrape job selects without a cluster."""

from __future__ import annotations

import re
from typing import Any


def _sanitize(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def pod_port_targets(deployment: dict[str, Any], namespace: str = "default") -> list[dict[str, str]]:
    """The discovery labels of each container port of a Deployment's (running) pod, as `role: pod` gives them."""
    template = deployment["spec"]["template"]
    meta = {
        "__meta_kubernetes_namespace": namespace,
        "__meta_kubernetes_pod_name": f"{deployment['metadata']['name']}-abc12",
        "__meta_kubernetes_pod_phase": "Running",
    }
    for key, value in template["metadata"].get("labels", {}).items():
        meta[f"__meta_kubernetes_pod_label_{_sanitize(key)}"] = value
    for key, value in template["metadata"].get("annotations", {}).items():
        meta[f"__meta_kubernetes_pod_annotation_{_sanitize(key)}"] = value
    targets = []
    for container in template["spec"]["containers"]:
        for port in container.get("ports", []):
            targets.append(
                {
                    **meta,
                    "__address__": f"10.0.0.1:{port['containerPort']}",
                    "__metrics_path__": "/metrics",
                    "__meta_kubernetes_pod_container_name": container["name"],
                    "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                    "__meta_kubernetes_pod_container_port_number": str(port["containerPort"]),
                }
            )
    return targets


def relabel(labels: dict[str, str], configs: list[dict[str, Any]]) -> dict[str, str] | None:
    """`labels` after `configs`, or None when a keep/drop rule drops the target."""
    labels = dict(labels)
    for config in configs:
        action = config.get("action", "replace")
        value = config.get("separator", ";").join(labels.get(name, "") for name in config.get("source_labels", []))
        match = re.fullmatch(config.get("regex", "(.*)"), value)
        if action == "keep" and match is None:
            return None
        if action == "drop" and match is not None:
            return None
        if action == "replace" and match is not None:
            template = re.sub(r"\$\{?(\w+)\}?", r"\\g<\1>", config.get("replacement", "$1"))
            labels[config["target_label"]] = match.expand(template)
        if action not in ("keep", "drop", "replace"):
            raise NotImplementedError(f"relabel action {action!r}")
    return labels
