"""Writing results: one JSON document for scripts (`--json`), lines for people, marks that survive any terminal."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import orjson

__all__ = ["Marks", "print_json", "say", "warn"]


def print_json(document: Any, *, compact: bool = False) -> None:
    """Print `document` as one JSON document (compact: on one line, for a stream of them)."""
    option = orjson.OPT_NON_STR_KEYS | (0 if compact else orjson.OPT_INDENT_2)
    sys.stdout.write(orjson.dumps(document, option=option).decode() + "\n")
    sys.stdout.flush()


def say(line: str = "") -> None:
    print(line, flush=True)


def warn(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Marks:
    """✓ / ! / ✗ where the terminal can show them, `ok` / `warn` / `FAIL` where it cannot (a C locale, a pipe)."""

    def __init__(self, stream: TextIO) -> None:
        try:
            "✓✗".encode(stream.encoding or "ascii")
        except (LookupError, UnicodeEncodeError):
            self.ok, self.warn, self.fail, self.skip, self.dash = "ok  ", "warn", "FAIL", "skip", "--"
        else:
            self.ok, self.warn, self.fail, self.skip, self.dash = "✓", "!", "✗", "-", "—"
