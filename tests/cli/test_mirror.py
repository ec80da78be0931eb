"""`hookyard mirror migrate`: creates the mirror's tables on an empty database, then leaves it as it is."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from processor.cli import main
from processor.cli.mirror import DEV_MIRROR_FILE
from processor.mirror.migrate import head_revision
from processor.mirror.schema import METADATA
from tests.fixtures import cli_state


def test_migrate_creates_the_tables_once(
    mirror_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an empty database named by HOOKYARD_MIRROR_URL
    cli_state.use_environment(monkeypatch, HOOKYARD_MIRROR_URL=mirror_url)
    monkeypatch.chdir(tmp_path)
    # When it is migrated
    assert main(["mirror", "migrate"]) == 0
    # Then it has every mirror table, and says from what to what
    assert capsys.readouterr().out.strip().endswith(f"empty -> {head_revision()}")
    engine = sa.create_engine(mirror_url)
    assert set(METADATA.tables) <= set(sa.inspect(engine).get_table_names())
    engine.dispose()
    # And a second run changes nothing
    assert main(["mirror", "migrate"]) == 0
    assert capsys.readouterr().out.strip().endswith(f": {head_revision()}")


def test_migrate_refuses_an_unknown_revision(
    mirror_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_state.use_environment(monkeypatch, HOOKYARD_MIRROR_URL=mirror_url)
    monkeypatch.chdir(tmp_path)
    assert main(["mirror", "migrate", "--to", "9999"]) == 1
    assert "cannot migrate the mirror to '9999'" in capsys.readouterr().err


def test_verbs_find_the_dev_mirror_in_the_data_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no HOOKYARD_MIRROR_URL, and the SQLite mirror `hookyard dev` keeps in its data directory
    cli_state.use_environment(monkeypatch, HOOKYARD_DATA_DIR=str(tmp_path))
    (tmp_path / DEV_MIRROR_FILE).touch()
    # When it is migrated, then listed
    assert main(["mirror", "migrate"]) == 0
    assert str(tmp_path / DEV_MIRROR_FILE) in capsys.readouterr().out
    assert main(["orgs"]) == 0
    # Then it is the one used
    assert capsys.readouterr().out.strip() == "no organizations in the mirror yet"
