"""Fixtures of the CLI tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from processor.testing import Harness
from tests.fixtures import cli_state
from tests.fixtures.cli_state import Scenario


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean Hookyard environment (nothing inherited) with the data directory in tmp; returns that directory."""
    data_dir = tmp_path / "data"
    cli_state.use_environment(monkeypatch, HOOKYARD_DATA_DIR=str(data_dir))
    monkeypatch.chdir(tmp_path)
    return data_dir


@pytest.fixture
def yard(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    """A harness with the CLI test handlers, the CLI's environment pointing at the same Redis and handlers."""
    cli_state.use_environment(monkeypatch, REDIS_URL=redis_url, HOOKYARD_HANDLERS=cli_state.MODULE)
    harness = Harness(cli_state.HANDLERS, redis_url=redis_url)
    yield harness
    harness.close()


@pytest.fixture
def scenario(yard: Harness) -> Scenario:
    """The CLI tests' store: done, pending, dead and skipped events (tests/fixtures/cli_state.py)."""
    return cli_state.build(yard)
