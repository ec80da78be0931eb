"""A kustomization rendered the way `kustomize build` would for what ours use: the `resources` it lists, in order
(files, or directories holding a kustomization of their own: an overlay's base), then its `patches` given by
`path`, applied as strategic merge patches. No kustomize or kubectl is needed; a kustomization field this does not
render fails loudly instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_RENDERED_FIELDS = frozenset({"apiVersion", "kind", "resources", "patches"})


def kustomization(base: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((base / "kustomization.yaml").read_text())
    return document


def render(base: Path) -> list[dict[str, Any]]:
    """Every object of the kustomization at `base`, in the order of its `resources`, patched."""
    spec = kustomization(base)
    unrendered = set(spec) - _RENDERED_FIELDS
    if unrendered:
        raise NotImplementedError(f"kustomization fields {sorted(unrendered)} are not rendered by {__name__}")
    objects: list[dict[str, Any]] = []
    for entry in spec["resources"]:
        path = base / entry
        if path.is_dir() and (path / "kustomization.yaml").is_file():
            objects.extend(render(path))
        elif path.is_file():
            objects.extend(document for document in yaml.safe_load_all(path.read_text()) if document)
        else:
            raise NotImplementedError(f"resource {entry!r} is neither a file nor a kustomization (URLs)")
    for patch_entry in spec.get("patches", []):
        if set(patch_entry) != {"path"}:
            raise NotImplementedError(f"patch {patch_entry!r}: only `path` (a strategic merge patch) is rendered")
        for patch in yaml.safe_load_all((base / patch_entry["path"]).read_text()):
            [target] = [o for o in objects if _identity(o) == _identity(patch)]  # kustomize fails on no match too
            objects[objects.index(target)] = merged(target, patch)
    return objects


def merged(target: Any, patch: Any) -> Any:
    """`patch` merged into `target` as a strategic merge patch does for the fields we patch: maps key by key,
    lists of named maps (containers, env) item by name, anything else replaced."""
    if isinstance(target, dict) and isinstance(patch, dict):
        result = dict(target)
        for key, value in patch.items():
            result[key] = merged(target[key], value) if key in target else value
        return result
    if isinstance(target, list) and isinstance(patch, list) and _named(target) and _named(patch):
        items = {item["name"]: item for item in target}
        for item in patch:
            items[item["name"]] = merged(items[item["name"]], item) if item["name"] in items else item
        return list(items.values())
    return patch


def _named(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and "name" in item for item in items)


def _identity(obj: dict[str, Any]) -> tuple[str, str, str]:
    return obj["apiVersion"], obj["kind"], obj["metadata"]["name"]
