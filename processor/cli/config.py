"""Settings for CLI verbs, built once from the environment `main` read.

Verbs that only read Redis must work on a machine that has no webhook secret (an operator's shell, a cron job),
and verbs that never touch Redis must work without `REDIS_URL`; both still read every other setting exactly as
the servers do, so a bad value is reported the same way (exit 2, naming the setting).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from processor.cli.devstate import dev_redis_url
from shared.errors import ConfigError
from shared.settings import Settings

__all__ = ["settings_for_redis", "settings_without_redis"]

_PLACEHOLDER_REDIS_URL = "redis://127.0.0.1:6379/0"


def settings_for_redis(environ: Mapping[str, str]) -> Settings:
    """Settings of a verb that talks to Redis: secrets are not required, and without `REDIS_URL` the embedded
    Redis of a `hookyard dev` running on the same data directory is used (as `send` uses its secret)."""
    if environ.get("REDIS_URL", "").strip():
        return Settings.from_env(environ, require_secret=False)
    settings = settings_without_redis(environ)
    url = dev_redis_url(Path(settings.data_dir))
    if url is None:
        raise ConfigError(
            "REDIS_URL", f"not set (e.g. redis://127.0.0.1:6379/0), and no `hookyard dev` runs on {settings.data_dir}"
        )
    return dataclasses.replace(settings, redis_url=url)


def settings_without_redis(environ: Mapping[str, str]) -> Settings:
    """Settings of a verb that never talks to Redis; the placeholder only satisfies the one setting it ignores."""
    env = dict(environ)
    if not env.get("REDIS_URL", "").strip():
        env["REDIS_URL"] = _PLACEHOLDER_REDIS_URL
    return Settings.from_env(env, require_secret=False)
