"""Environments the deployment files give the processes: every name a setting Hookyard documents, every value
one it accepts."""

from __future__ import annotations

import re
from collections.abc import Mapping

from shared.errors import ConfigError
from shared.settings import Settings
from tests.deploy.paths import ROOT

#: Variables of the runtime, not Hookyard settings.
_NOT_SETTINGS = frozenset({"PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PROMETHEUS_MULTIPROC_DIR"})

#: What HOOKYARD_HOST must be in a container: reachable from outside its network namespace.
CONTAINER_HOST = "0.0.0.0"  # noqa: S104 - the address the processes bind in containers

#: How long `hookyard worker` takes to stop at most: a lease (each worker process finishes its runs), and the
#: supervisor waits a lease + 5 s before it kills (processor/fleet.py). Grace periods must exceed it.
WORKER_DRAIN_S = Settings.from_env({"REDIS_URL": "redis://localhost"}, require_secret=False).lease_s + 5


def problems(env: Mapping[str, str], *, require_secret: bool) -> list[str]:
    """What is wrong with `env` as a Hookyard process environment (empty: nothing)."""
    documented = (ROOT / "docs" / "configuration.md").read_text()
    found = [
        f"{name} is not a documented setting (docs/configuration.md)"
        for name in sorted(env)
        if name not in _NOT_SETTINGS and not re.search(rf"`{re.escape(name)}`", documented)
    ]
    try:
        Settings.from_env(env, require_secret=require_secret)
    except ConfigError as exc:
        found.append(f"rejected by Settings: {exc}")
    return found
