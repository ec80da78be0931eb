"""`hookyard handlers`: what a worker started here would run — loaded as the worker loads it, from the current
directory — with patterns, options and origin."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from processor.cli import main
from tests.fixtures import cli_state


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    """A handler module in the current directory, never imported before: (module name, handler name)."""
    suffix = uuid.uuid4().hex[:10]
    module, name = f"team_handlers_{suffix}", f"team.sync_{suffix}"
    (tmp_path / f"{module}.py").write_text(
        "from processor import handler\n\n"
        f"@handler('dsync.group.*', 'dsync.user.*', name='{name}', order_by='directory', late='skip',\n"
        "         max_attempts=5, min_backoff=2, max_backoff=3600)\n"
        "async def sync(event):\n"
        "    pass\n"
    )
    cli_state.use_environment(monkeypatch, HOOKYARD_HANDLERS=module)
    monkeypatch.chdir(tmp_path)
    yield module, name
    sys.modules.pop(module, None)


def test_table_lists_options_and_origin(project: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    _, name = project

    assert main(["handlers"]) == 0

    header, *rows = [re.split(r" {2,}", line) for line in capsys.readouterr().out.splitlines()]
    assert header == ["HANDLER", "PATTERNS", "ORDER BY", "LATE", "ATTEMPTS", "BACKOFF", "ORIGIN"]
    [row] = [row for row in rows if row[0] == name]
    assert row[1:] == ["dsync.group.* dsync.user.*", "directory", "skip", "5", "2s..1h", "HOOKYARD_HANDLERS"]
    # The module was imported from the current directory only while loading
    assert str(Path.cwd()) not in sys.path


def test_json(project: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    _, name = project

    assert main(["handlers", "--json"]) == 0

    [found] = [h for h in orjson.loads(capsys.readouterr().out)["handlers"] if h["name"] == name]
    assert found == {
        "name": name,
        "patterns": ["dsync.group.*", "dsync.user.*"],
        "order_by": "directory",
        "ordered": True,
        "late": "skip",
        "max_attempts": 5,
        "min_backoff_s": 2.0,
        "max_backoff_s": 3600.0,
        "async": True,
        "origin": "HOOKYARD_HANDLERS",
    }


def test_builtins_when_logging_events(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cli_state.use_environment(monkeypatch, HOOKYARD_LOG_EVENTS="true")

    assert main(["handlers", "--json"]) == 0

    [builtin] = [h for h in orjson.loads(capsys.readouterr().out)["handlers"] if h["name"] == "hookyard.log_events"]
    assert (builtin["patterns"], builtin["order_by"], builtin["ordered"]) == (["*"], "none", False)


def test_a_module_that_does_not_import_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_state.use_environment(monkeypatch, HOOKYARD_HANDLERS="no_such_module_here")

    assert main(["handlers"]) == 1

    captured = capsys.readouterr()
    assert captured.err.startswith(
        "hookyard handlers: cannot import handler module 'no_such_module_here' (HOOKYARD_HANDLERS): "
    )
    assert captured.err.count("\n") == 1


def test_needs_neither_redis_nor_a_secret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cli_state.use_environment(monkeypatch, HOOKYARD_HANDLERS=cli_state.MODULE)

    assert main(["handlers"]) == 0
    assert "cli.users" in capsys.readouterr().out
