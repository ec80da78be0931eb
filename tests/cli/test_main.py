"""The `hookyard` command as a whole: every verb has help, usage errors exit 2, `python -m processor.cli` is the same
command, and the public surface is `main`. Each verb has its own test module (tests/cli/test_<verb>.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from processor.cli import main
from processor.devtools.samples import EVENT_TYPES
from shared.settings import UnknownSettingWarning


@pytest.mark.parametrize(
    "argv",
    [
        ["send"],
        ["send", "dsync.user.created", "--file", "x.json"],
        ["send", "user.created"],
        ["send", "dsync.user.created", "--count", "0"],
        ["send", "dsync.user.created", "--source", "Not A Name"],
        ["send", "dsync.user.created", "--duplicates", "1.5"],
        ["verify", "--header", "t=1, v1=00"],
        ["verify", "--header", "t=1, v1=00", "--body-file", "x", "-"],
        ["stats", "--count", "2"],
        ["events"],
        ["events", "list", "--since", "yesterday"],
        ["events", "list", "--follow", "--status", "dead"],
        ["events", "list", "--status", "stuck"],
        ["dlq", "replay"],
        ["dlq", "purge", "--all", "--handler", "x"],
        ["completion", "fish"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(argv: list[str], env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    assert "usage: hookyard" in capsys.readouterr().err


def test_an_unknown_event_type_lists_the_known_ones(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["send", "user.created"])

    err = capsys.readouterr().err
    assert all(t in err for t in EVENT_TYPES)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--help"],
            [
                "dev",
                "send",
                "verify",
                "doctor",
                "stats",
                "events",
                "dlq",
                "handlers",
                "receiver",
                "worker",
                "completion",
            ],
        ),
        (["dev", "--help"], ["--workers N", "--port P", "--host H"]),
        (
            ["send", "--help"],
            [
                "EVENT_TYPE",
                "--url",
                "--secret",
                "--source",
                "--count N",
                "--file F",
                "--duplicates P",
                "--shuffle",
                "--seed",
                "--rate R",
                "--concurrency C",
                "--verbose",
                "--json",
            ],
        ),
        (["verify", "--help"], ["--secret S", "--header H", "--body-file F", "--tolerance T", "--json", "mismatch"]),
        (["doctor", "--help"], ["appendonly", "noeviction", "--json"]),
        (["stats", "--help"], ["--json", "--watch S", "--count N", "--sample S", "--metrics-url"]),
        (["events", "--help"], ["list", "show"]),
        (
            ["events", "list", "--help"],
            [
                "--type T",
                "--source",
                "--resource ID",
                "--handler H",
                "--status",
                "--since T",
                "--until T",
                "--limit N",
                "--follow",
                "--json",
            ],
        ),
        (["events", "show", "--help"], ["ID", "--source", "--raw", "--json", "unknown"]),
        (["dlq", "--help"], ["list", "show", "replay", "purge", "--skipped"]),
        (["dlq", "list", "--help"], ["--handler H", "--since T", "--until T", "--skipped", "--limit N", "--json"]),
        (["dlq", "show", "--help"], ["ID", "--handler H", "--json"]),
        (["dlq", "replay", "--help"], ["ID", "--handler H", "--since T", "--until T", "--all", "--dry-run"]),
        (["dlq", "purge", "--help"], ["ID", "--handler H", "--all", "--yes", "--dry-run"]),
        (["handlers", "--help"], ["--json", "HOOKYARD_HANDLERS"]),
        (["receiver", "--help"], ["python -m receiver"]),
        (["worker", "--help"], ["python -m processor"]),
        (["completion", "--help"], ["SHELL", "bash", "zsh"]),
    ],
)
def test_every_verb_has_help(argv: list[str], expected: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert all(text in out for text in expected)


def test_the_public_surface_is_main() -> None:
    import processor.cli

    assert processor.cli.__all__ == ["main"]


def test_python_dash_m_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "processor.cli", "--help"], capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    assert "usage: hookyard" in done.stdout


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out == f"hookyard {metadata.version('hookyard')}\n"


# --- settings as the operator typed them ----------------------------------------------------------------------


def test_a_word_for_a_number_is_named_plainly(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOOKYARD_WORKERS", "two")

    assert main(["handlers", "--local"]) == 2

    assert capsys.readouterr().err == (
        "hookyard: configuration error: HOOKYARD_WORKERS: expected a whole number, got 'two'\n"
    )


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("HOOKYARD_REORDER_WINDOWS", "did you mean HOOKYARD_REORDER_WINDOW?"),
        ("HOOKYARD_WORKER", "did you mean HOOKYARD_WORKERS?"),
        ("HOOKYARD_SOURCE_STAGING_SECRETS", "is its source listed in HOOKYARD_SOURCES?"),
    ],
)
def test_a_misspelt_setting_is_not_ignored_silently(
    name: str, hint: str, env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, "1s")

    with pytest.warns(UnknownSettingWarning) as warned:
        assert main(["handlers", "--local"]) == 0

    assert [str(w.message) for w in warned] == [f"{name} is not a Hookyard setting and is ignored; {hint}"]


def test_the_warning_is_one_line_once_per_process(env: Path) -> None:
    # A real process (no pytest filters) that builds its settings twice
    environ = {**os.environ, "HOOKYARD_REORDER_WINDOWS": "1s", "HOOKYARD_DATA_DIR": str(env)}
    environ.pop("PYTHONWARNINGS", None)
    twice = "from processor.cli import main; main(['handlers', '--local']); main(['handlers', '--local'])"
    done = subprocess.run(
        [sys.executable, "-c", twice], capture_output=True, text=True, timeout=60, check=False, env=environ
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == (
        "hookyard: warning: HOOKYARD_REORDER_WINDOWS is not a Hookyard setting and is ignored; "
        "did you mean HOOKYARD_REORDER_WINDOW?\n"
    )
