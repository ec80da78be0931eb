"""`python -m receiver`: the webhook receiver, configured from the environment (docs/configuration.md)."""

from __future__ import annotations

import os
import sys

from receiver.server import run
from shared.errors import ConfigError
from shared.logging import configure_logging
from shared.redis_clients import unreachable
from shared.settings import Settings

__all__ = ["EXIT_CONFIG_ERROR", "EXIT_STORE_UNREACHABLE", "main"]

EXIT_CONFIG_ERROR = 2
#: Redis cannot be used at start (the message says why): a process run by hand stops with one clear line.
EXIT_STORE_UNREACHABLE = 4


def main() -> int:
    # The only place the receiver reads the environment.
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        # Logging is not configured yet, and one plain line is what an operator needs here.
        sys.stderr.write(f"hookyard receiver: configuration error: {exc}\n")
        return EXIT_CONFIG_ERROR
    problem = unreachable(settings.redis_url)
    if problem is not None:
        sys.stderr.write(f"hookyard receiver: {problem}\n")
        return EXIT_STORE_UNREACHABLE
    configure_logging(settings.log_level, settings.log_format, batched=True)
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
