"""`hookyard handlers`: what the live workers loaded (published with their heartbeats), flagging workers that
disagree; with none alive, no Redis or `--local`, what a worker started here would run — loaded as the worker loads
it, from the current directory — with patterns, options, origin and version."""

from __future__ import annotations

import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis

from processor.cli import main
from processor.stats import hookyard_version
from shared import keys
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
    assert header == ["HANDLER", "PATTERNS", "ORDER BY", "LATE", "ATTEMPTS", "BACKOFF", "ORIGIN", "VERSION"]
    [row] = [row for row in rows if row[0] == name]
    assert row[1:] == ["dsync.group.* dsync.user.*", "directory", "skip", "5", "2s..1h", "HOOKYARD_HANDLERS", "-"]
    assert rows[-1] == ["no Redis configured (REDIS_URL): what a worker started here would load"]
    # The module was imported from the current directory only while loading
    assert str(Path.cwd()) not in sys.path


def test_json(project: tuple[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    module, name = project

    assert main(["handlers", "--json"]) == 0

    document = orjson.loads(capsys.readouterr().out)
    assert (document["from"], document["agree"], document["sets"]) == ("this process", True, [])
    [found] = [h for h in document["handlers"] if h["name"] == name]
    code = found.pop("code")
    assert found == {
        "name": name,
        "patterns": ["dsync.group.*", "dsync.user.*"],
        "order_by": "directory",
        "ordered": True,
        "late": "skip",
        "max_attempts": 5,
        "min_backoff_s": 2.0,
        "max_backoff_s": 3600.0,
        "timeout_s": 300.0,
        "async": True,
        "origin": "HOOKYARD_HANDLERS",
        "module": module,
        "version": None,
        "workers": [],
    }
    assert re.fullmatch(r"[0-9a-f]{12}", code)  # the module's source, so two deploys of it are told apart


def test_builtins_when_logging_events(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cli_state.use_environment(monkeypatch, HOOKYARD_LOG_EVENTS="true")

    assert main(["handlers", "--json"]) == 0

    [builtin] = [h for h in orjson.loads(capsys.readouterr().out)["handlers"] if h["name"] == "hookyard.log_events"]
    assert (builtin["patterns"], builtin["order_by"], builtin["ordered"]) == (["*"], "none", False)
    assert builtin["version"] == hookyard_version()


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


# --- what the live workers loaded -----------------------------------------------------------------------------


@pytest.fixture
def operator(redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """An operator's shell: Redis, and no handler module of its own (what it imports is not what workers run)."""
    cli_state.use_environment(monkeypatch, REDIS_URL=redis_url)
    monkeypatch.chdir(tmp_path)
    return redis_url


def test_shows_the_handlers_the_live_workers_loaded(
    operator: str, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a worker that loaded cli_state's handlers and swept once
    worker = cli_state.sweep_as_a_worker(operator, cli_state.registry())

    # When the operator asks, from a shell that imports none of them
    assert main(["handlers"]) == 0

    # Then they see the worker's set
    header, *rows, blank, footer = [re.split(r" {2,}", line) for line in capsys.readouterr().out.splitlines()]
    assert header[-2:] == ["ORIGIN", "VERSION"]
    assert [row[0] for row in rows] == ["cli.audit", "cli.strict", "cli.users"]
    assert rows[2][1:6] == ["dsync.user.*", "resource", "deliver", "2", "500ms"]
    assert blank == [""]
    assert footer == [f"loaded by 1 live worker on Hookyard {hookyard_version()} ({worker})"]


def test_json_from_the_live_workers(operator: str, capsys: pytest.CaptureFixture[str]) -> None:
    worker = cli_state.sweep_as_a_worker(operator, cli_state.registry())

    assert main(["handlers", "--json"]) == 0

    document = orjson.loads(capsys.readouterr().out)
    assert (document["from"], document["agree"], document["silent"]) == ("workers", True, [])
    assert document["sets"] == [{"label": "A", "workers": [worker], "hookyard": hookyard_version()}]
    assert [(h["name"], h["workers"]) for h in document["handlers"]] == [
        (name, [worker]) for name in ("cli.audit", "cli.strict", "cli.users")
    ]


def test_workers_that_disagree_are_flagged(
    operator: str, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a rolling deploy: two workers still on the old handlers, one on new ones (more attempts everywhere)
    cli_state.publish_as_worker(redis_client, "old-1:1", cli_state.registry())
    cli_state.publish_as_worker(redis_client, "old-2:1", cli_state.registry())
    cli_state.publish_as_worker(redis_client, "new-1:1", cli_state.registry(max_attempts=9), hookyard="0.2.0")

    assert main(["handlers"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0] == "the live workers disagree (a rolling deploy?): 2 handler sets among 3 workers"
    header, *rows = [re.split(r" {2,}", line) for line in out[1 : out.index("")]]
    assert header[-2:] == ["CODE", "SETS"]
    assert [(row[0], row[4], row[-1]) for row in rows] == [
        ("cli.audit", "8", "A"),
        ("cli.audit", "9", "B"),
        ("cli.strict", "8", "A"),
        ("cli.strict", "9", "B"),
        ("cli.users", "2", "A"),
        ("cli.users", "9", "B"),
    ]
    assert out[out.index("") + 1 :] == [
        "A: loaded by 2 live workers on Hookyard 0.1.0 (old-1:1, old-2:1)",
        "B: loaded by 1 live worker on Hookyard 0.2.0 (new-1:1)",
    ]


def test_a_handler_the_same_everywhere_is_one_row(
    operator: str, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two workers that differ only in their Hookyard version
    cli_state.publish_as_worker(redis_client, "a:1", cli_state.registry(), hookyard="0.1.0")
    cli_state.publish_as_worker(redis_client, "b:1", cli_state.registry(), hookyard="0.2.0")

    assert main(["handlers", "--json"]) == 0

    document = orjson.loads(capsys.readouterr().out)
    assert document["agree"] is False
    assert [(h["name"], h["workers"]) for h in document["handlers"]] == [
        (name, ["a:1", "b:1"]) for name in ("cli.audit", "cli.strict", "cli.users")
    ]


def test_workers_that_publish_no_set_are_named(
    operator: str, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given one worker of a Hookyard that did not publish handler sets yet, beside one that does
    cli_state.publish_as_worker(redis_client, "new:1", cli_state.registry())
    cli_state.publish_as_worker(redis_client, "old:1", None)

    assert main(["handlers"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0] == "the live workers disagree (a rolling deploy?): 2 handler sets among 2 workers"
    assert out[-2:] == [
        "A: loaded by 1 live worker on Hookyard 0.1.0 (new:1)",
        "?: 1 live worker (old:1), which publish no handler set (a Hookyard from before they did)",
    ]


def test_with_no_live_worker_it_is_what_this_process_would_load(
    operator: str, monkeypatch: pytest.MonkeyPatch, redis_client: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a worker that stopped sweeping long ago
    redis_client.zadd(keys.WORKERS, {"gone:1": 1})
    monkeypatch.setenv("HOOKYARD_HANDLERS", cli_state.MODULE)

    assert main(["handlers"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("cli.users ") for line in out)
    assert out[-1] == "no live worker: what a worker started here would load"


def test_local_does_not_ask_the_workers(
    operator: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_state.sweep_as_a_worker(operator, cli_state.registry(max_attempts=9))
    monkeypatch.setenv("HOOKYARD_HANDLERS", cli_state.MODULE)

    assert main(["handlers", "--local", "--json"]) == 0

    document = orjson.loads(capsys.readouterr().out)
    assert document["from"] == "this process"
    assert {h["name"]: h["max_attempts"] for h in document["handlers"]}["cli.users"] == 2
