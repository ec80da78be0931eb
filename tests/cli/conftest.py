"""Fixtures of the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import cli_state


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A clean Hookyard environment (nothing inherited) with the data directory in tmp; returns that directory."""
    data_dir = tmp_path / "data"
    cli_state.use_environment(monkeypatch, HOOKYARD_DATA_DIR=str(data_dir))
    monkeypatch.chdir(tmp_path)
    return data_dir
