"""The kustomize base rendered the way `kustomize build` would for what it uses: the `resources` it lists, in
order. No kustomize or kubectl is needed; a kustomization field this does not render fails loudly instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_RENDERED_FIELDS = frozenset({"apiVersion", "kind", "resources"})


def kustomization(base: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((base / "kustomization.yaml").read_text())
    return document


def render(base: Path) -> list[dict[str, Any]]:
    """Every object of the base, in the order of its `resources`."""
    spec = kustomization(base)
    unrendered = set(spec) - _RENDERED_FIELDS
    if unrendered:
        raise NotImplementedError(f"kustomization fields {sorted(unrendered)} are not rendered by {__name__}")
    objects: list[dict[str, Any]] = []
    for entry in spec["resources"]:
        path = base / entry
        if not path.is_file():
            raise NotImplementedError(f"resource {entry!r} is not a file of the base (directories and URLs)")
        objects.extend(document for document in yaml.safe_load_all(path.read_text()) if document)
    return objects
