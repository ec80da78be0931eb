"""Hides packaged Hookyard handler plugins from the processes the benchmark starts.

The `hookyard.handlers` entry point group is loaded by every worker, and a plugin installed in the shared
virtualenv (an example, another team's package) would run beside the bench's no-op handler and be measured with
it. The bench puts this directory first on PYTHONPATH of the worker supervisor (whose children inherit it), so
Python imports this at start-up: only the handlers named in HOOKYARD_HANDLERS run.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

_GROUP = "hookyard.handlers"
_entry_points = importlib.metadata.entry_points


def _without_handler_plugins(**params: Any) -> Any:
    if params.get("group") == _GROUP:
        return importlib.metadata.EntryPoints(())
    return _entry_points(**params)


importlib.metadata.entry_points = _without_handler_plugins
