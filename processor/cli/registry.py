"""The handlers a worker started here would run, loaded the way the worker loads them.

`@handler` registers into `processor.handlers.default_registry` when its module is imported, so that is the
registry this returns; a module imported earlier in the same process is not imported twice and keeps its
registrations. Handler modules (`HOOKYARD_HANDLERS`) are found from the current directory, as `hookyard dev` and
`hookyard worker` find them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from processor.discovery import load_handlers
from processor.handlers import Registry, default_registry
from shared.settings import Settings

__all__ = ["load_registry"]


def load_registry(settings: Settings) -> Registry:
    """Import every configured handler module; raises `RegistrationError` naming the one that fails."""
    with _importable_from_cwd():
        return load_handlers(settings, default_registry)


@contextmanager
def _importable_from_cwd() -> Iterator[None]:
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
