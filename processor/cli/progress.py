"""A progress bar on stderr for long work (`dlq replay`, `dlq purge`, `send --count`), drawn only on a terminal.

Redirected output gets no bar at all: a log file full of carriage returns helps nobody, and the verb prints
its own summary when it is done.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

__all__ = ["Progress"]

_WIDTH = 30
_MIN_REDRAW_S = 0.1


class Progress:
    """`with Progress(total, "replaying") as bar: ... bar.advance()`; the bar is cleared line by line on exit."""

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
        filled = int(fraction * _WIDTH)
        bar = "#" * filled + "-" * (_WIDTH - filled)
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
