"""How the CLI writes for people and scripts: one JSON document for `--json`, lines and aligned tables for people,
times (UTC, ISO-8601, milliseconds) and ages ("3m 04s"), marks that survive any terminal, and a progress bar on
stderr for long work — no colours, no box drawing, no dependency."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

import orjson

from shared.settings import UnknownSettingWarning

__all__ = [
    "Marks",
    "Progress",
    "age",
    "iso",
    "print_json",
    "render_table",
    "say",
    "span",
    "warn",
    "warnings_as_lines",
]


# --- writing --------------------------------------------------------------------------------------------------


def print_json(document: Any, *, compact: bool = False) -> None:
    """Print `document` as one JSON document (compact: on one line, for a stream of them)."""
    option = orjson.OPT_NON_STR_KEYS | (0 if compact else orjson.OPT_INDENT_2)
    sys.stdout.write(orjson.dumps(document, option=option).decode() + "\n")
    sys.stdout.flush()


def say(line: str = "") -> None:
    print(line, flush=True)


def warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def warnings_as_lines() -> None:
    """Show a setting warning (a misspelt `HOOKYARD_*` name) as one `hookyard: warning: …` line on stderr instead
    of Python's file name, line number and source line; any other warning keeps Python's format."""
    warnings.formatwarning = _one_line


_PYTHON_FORMAT = warnings.formatwarning


def _one_line(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
) -> str:
    if issubclass(category, UnknownSettingWarning):
        return f"hookyard: warning: {message}\n"
    return _PYTHON_FORMAT(message, category, filename, lineno, line)


class Marks:
    """✓ / ! / ✗ where the terminal can show them, `ok` / `warn` / `FAIL` where it cannot (a C locale, a pipe)."""

    def __init__(self, stream: TextIO) -> None:
        try:
            "✓✗".encode(stream.encoding or "ascii")
        except (LookupError, UnicodeEncodeError):
            self.ok, self.warn, self.fail, self.skip, self.dash = "ok  ", "warn", "FAIL", "skip", "--"
        else:
            self.ok, self.warn, self.fail, self.skip, self.dash = "✓", "!", "✗", "-", "—"


# --- tables ---------------------------------------------------------------------------------------------------

_GAP = "  "


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, right: Sequence[int] = ()) -> str:
    """Columns padded to their widest cell; the columns numbered in `right` (numbers) are right-aligned.

    Returns the lines joined by newlines, without trailing spaces or a final newline.
    """
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells, table has {len(headers)} columns")
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    aligned = set(right)
    lines = []
    for row in [list(headers), *cells]:
        padded = [text.rjust(widths[i]) if i in aligned else text.ljust(widths[i]) for i, text in enumerate(row)]
        lines.append(_GAP.join(padded).rstrip())
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    # One line per row: a newline in a cell (an error message) would break every column after it.
    return " ".join(str(value).split()) if isinstance(value, str) else str(value)


# --- times ----------------------------------------------------------------------------------------------------


def iso(ms: int | None) -> str | None:
    """`2026-11-27T14:03:09.120Z`, or None for a missing time (0 or None)."""
    if not ms:
        return None
    when = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def age(seconds: float | None) -> str | None:
    """A short duration for people: `0.4s`, `12s`, `3m 04s`, `2h 05m`, `3d 04h`; negative means in the future."""
    if seconds is None:
        return None
    if seconds < 0:
        return "in " + (age(-seconds) or "")
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h {whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d {whole % 86400 // 3600:02d}h"


def span(seconds: float) -> str:
    """A configured duration as it would be written in a setting: `500ms`, `1s`, `10m`, `2h`, `7d`."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


# --- progress -------------------------------------------------------------------------------------------------

_BAR_WIDTH = 30
_MIN_REDRAW_S = 0.1


class Progress:
    """`with Progress(total, "replaying") as bar: ... bar.advance()`; the bar is cleared line by line on exit.

    Drawn only on a terminal (`dlq replay`, `dlq purge`, `send --count`): redirected output gets no bar at all —
    a log file full of carriage returns helps nobody, and the verb prints its own summary when it is done.
    """

    def __init__(self, total: int, label: str, *, stream: TextIO | None = None) -> None:
        self.total = max(0, total)
        self.label = label
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.total > 0 and self.stream.isatty()
        self._started = time.monotonic()
        self._drawn_at = 0.0

    def advance(self, step: int = 1) -> None:
        self.done = min(self.total, self.done + step)
        now = time.monotonic()
        # Redrawing on every step would cost more than the work for fast steps; the last step always draws.
        if self.enabled and (now - self._drawn_at >= _MIN_REDRAW_S or self.done == self.total):
            self._drawn_at = now
            self.stream.write("\r" + self.render(now - self._started))
            self.stream.flush()

    def render(self, elapsed_s: float) -> str:
        fraction = self.done / self.total if self.total else 1.0
        filled = int(fraction * _BAR_WIDTH)
        bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
        line = f"{self.label} [{bar}] {self.done}/{self.total} {fraction:4.0%}"
        if 0 < self.done < self.total and elapsed_s > 0:
            line += f" ETA {elapsed_s / self.done * (self.total - self.done):.0f}s"
        return line.ljust(len(line) + 8)  # erase what a longer previous line (an ETA) left behind

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.enabled and self._drawn_at:
            self.stream.write("\n")
            self.stream.flush()
