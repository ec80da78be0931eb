"""What every verb works with: settings that find the Redis of a running `hookyard dev`, a Redis connection whose
failures are one line without the password, and URLs fit to print."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from processor.cli import main
from processor.cli.context import without_password
from shared.embedded_redis import EmbeddedRedis, free_port


@pytest.mark.parametrize(
    "argv",
    [
        ["stats"],
        ["doctor"],
        ["events", "list"],
        ["events", "show", "event_1"],
        ["dlq", "list"],
        ["dlq", "show", "event_1"],
        ["dlq", "replay", "--all"],
        ["dlq", "purge", "--all", "--yes"],
    ],
)
def test_unreachable_redis_is_one_line_and_exit_1(
    argv: list[str], env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    monkeypatch.setenv("REDIS_URL", f"redis://:pa55word-here@127.0.0.1:{port}/0")

    assert main(argv) == 1

    captured = capsys.readouterr()
    said = captured.out if argv == ["doctor"] else captured.err  # doctor reports it as one of its checks
    assert f"cannot reach Redis at redis://:****@127.0.0.1:{port}/0: " in said
    assert "pa55word" not in captured.out + captured.err
    assert "Traceback" not in captured.err
    if argv != ["doctor"]:
        assert captured.err.startswith(f"hookyard {argv[0]}: cannot reach Redis at ")
        assert captured.err.count("\n") == 1


def test_redis_verbs_use_the_redis_of_a_running_dev(
    env: Path, redis_server: EmbeddedRedis, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no REDIS_URL, but a `hookyard dev` whose embedded Redis runs on this data directory
    env.mkdir()
    (env / "redis.pid").write_text(f"{redis_server.pid}\n")
    (env / "redis.port").write_text(f"{redis_server.port}\n")

    assert main(["stats", "--json", "--sample", "0"]) == 0
    assert orjson.loads(capsys.readouterr().out)["inbox"] == 0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@host:6379/0", "redis://:****@host:6379/0"),
        ("rediss://user:pw@host:6379/0", "rediss://user:****@host:6379/0"),
        ("redis://host:6379/0?password=pw&db=1", "redis://host:6379/0?password=****&db=1"),
        ("redis://host:6379/0", "redis://host:6379/0"),
    ],
)
def test_urls_are_printed_without_passwords(url: str, shown: str) -> None:
    assert without_password(url) == shown
