"""The image installs the package without extras (`pip install -c constraints.txt .`): the commands it runs must
import with the runtime dependencies alone, not with something only the `test` extra brings."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.paths import ROOT

# What the image runs: the console script (`hookyard receiver|worker` resolve through it) and the modules it
# execs (the console among them, with HOOKYARD_CONSOLE_PORT). processor/__main__.py exits on import, so its target
# module stands in for it.
ENTRY_MODULES = (
    "processor.cli",
    "receiver.__main__",
    "processor.fleet",
    "processor.worker",
    "processor.console.__main__",
)

_IMPORT_WITHOUT = """
import importlib.abc, sys
blocked = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ImportError(f"{name} comes only with the test extra, not in the image")
sys.meta_path.insert(0, Block())
for module in sys.argv[2].split(","):
    __import__(module)
"""


def closure(requirements: list[str]) -> set[str]:
    """The distributions `requirements` install, transitively (extras followed, environment markers honoured)."""
    found: set[str] = set()
    visited: set[tuple[str, frozenset[str]]] = set()
    pending = [(Requirement(r), "") for r in requirements]
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
            continue
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in visited:
            continue
        visited.add(key)
        found.add(key[0])
        try:
            requires = metadata.requires(requirement.name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed here (a marker for another platform): nothing below it to follow
        for wanted in ("", *requirement.extras):
            pending.extend((Requirement(r), wanted) for r in requires)
    return found


def modules_only_in_test_extra() -> set[str]:
    """Top-level modules that only distributions brought by the `test` extra provide."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = closure(project["dependencies"])
    test_only = closure(project["optional-dependencies"]["test"]) - runtime
    return {
        module
        for module, distributions in metadata.packages_distributions().items()
        if all(canonicalize_name(d) in test_only for d in distributions)
    }


def test_the_image_commands_import_without_test_only_dependencies() -> None:
    blocked = modules_only_in_test_extra()
    assert "pytest" in blocked and "starlette" not in blocked
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_WITHOUT, ",".join(sorted(blocked)), ",".join(ENTRY_MODULES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.strip().splitlines()[-1]
