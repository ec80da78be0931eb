"""What every processor process does first: read the settings, set up logging, import the handler modules."""

from __future__ import annotations

import os
import sys

from processor.discovery import load_handlers
from shared.errors import ConfigError, RegistrationError
from shared.logging import configure_logging
from shared.settings import Settings

__all__ = ["EXIT_CONFIG_ERROR", "start_process"]

EXIT_CONFIG_ERROR = 2


def start_process() -> Settings | int:
    """Settings with logging configured and handlers registered, or the exit code after one clear line."""
    try:
        settings = Settings.from_env(os.environ, require_secret=False)
    except ConfigError as exc:
        print(f"hookyard worker: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    configure_logging(settings.log_level, settings.log_format)
    try:
        load_handlers(settings)
    except RegistrationError as exc:
        # One line naming the module and the error, then its traceback once; the supervisors do not restart a
        # process that exits with EXIT_CONFIG_ERROR (it would fail the same way).
        print(f"hookyard worker: {exc}", file=sys.stderr)
        if exc.detail:
            print(exc.detail, file=sys.stderr)
        return EXIT_CONFIG_ERROR
    return settings
