"""`python -m processor.console`: the console as a process of its own, as the worker fleet starts it when
HOOKYARD_CONSOLE_PORT is set."""

from __future__ import annotations

import sys

from processor.console.server import serve
from processor.handlers import default_registry
from processor.startup import start_process


def main() -> int:
    settings = start_process()
    if isinstance(settings, int):
        return settings
    serve(settings, default_registry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
