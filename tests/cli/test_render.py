"""How the CLI writes for people: aligned tables, times and ages, spans as settings read, and the progress bar."""

from __future__ import annotations

import io

import pytest

from processor.cli.render import Progress, age, iso, render_table, span


def test_table_aligns_columns_and_right_aligns_numbers() -> None:
    rendered = render_table(("NAME", "COUNT", "NOTE"), [("a", 1, "x"), ("longer", 1234, None)], right=(1,))

    assert rendered.splitlines() == [
        "NAME    COUNT  NOTE",
        "a           1  x",
        "longer   1234  -",
    ]


def test_table_keeps_each_row_on_one_line() -> None:
    rendered = render_table(("A", "B"), [("one\ntwo", "three   four")])

    assert rendered.splitlines() == ["A        B", "one two  three four"]


def test_table_refuses_a_ragged_row() -> None:
    with pytest.raises(ValueError, match="2 columns"):
        render_table(("A", "B"), [("only one",)])


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.37, "0.4s"),
        (9.96, "10.0s"),
        (42, "42s"),
        (184, "3m 04s"),
        (7500, "2h 05m"),
        (3 * 86400 + 4 * 3600, "3d 04h"),
        (-90, "in 1m 30s"),
        (None, None),
    ],
)
def test_ages(seconds: float | None, text: str | None) -> None:
    assert age(seconds) == text


def test_times_are_utc_iso_with_milliseconds() -> None:
    assert iso(1722443701539) == "2024-07-31T16:35:01.539Z"
    assert iso(0) is None
    assert iso(None) is None


@pytest.mark.parametrize(("seconds", "text"), [(0.5, "500ms"), (1, "1s"), (90, "90s"), (600, "10m"), (86400, "1d")])
def test_spans_read_like_settings(seconds: float, text: str) -> None:
    assert span(seconds) == text


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_on_a_terminal_and_ends_the_line() -> None:
    stream = FakeTerminal()

    with Progress(4, "replaying", stream=stream) as bar:
        for _ in range(4):
            bar.advance()

    drawn = stream.getvalue()
    assert drawn.startswith("\rreplaying [")
    assert "4/4 100%" in drawn
    assert drawn.endswith("\n")


def test_progress_is_silent_when_not_a_terminal() -> None:
    stream = io.StringIO()

    with Progress(3, "purging", stream=stream) as bar:
        bar.advance(3)

    assert stream.getvalue() == ""


def test_progress_shows_an_eta_midway() -> None:
    bar = Progress(10, "sending", stream=FakeTerminal())
    bar.done = 5

    assert bar.render(elapsed_s=2.0).rstrip() == "sending [###############---------------] 5/10  50% ETA 2s"
