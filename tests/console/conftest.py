"""Fixtures of the console tests: the CLI tests' scenario (`yard`, `scenario`: done, pending, dead and skipped
events made by the in-process Harness in the test Redis) and the console app over it, driven by Starlette's
TestClient."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from starlette.testclient import TestClient

from processor.console import build_app
from shared.settings import Settings
from tests.cli.conftest import scenario, yard
from tests.conftest import TEST_SECRET
from tests.fixtures import cli_state

__all__ = ["CONSOLE_TOKEN", "ConsoleFactory", "console", "scenario", "yard"]

CONSOLE_TOKEN = "console-token-0123456789"


ConsoleFactory = Callable[..., TestClient]


@pytest.fixture
def console(redis_url: str) -> Iterator[ConsoleFactory]:
    """Builds a console over the test Redis with `settings` (HOOKYARD_* names) added; closed after the test."""
    opened: list[TestClient] = []

    def build(**settings: str) -> TestClient:
        env = {
            "REDIS_URL": redis_url,
            "WORKOS_WEBHOOK_SECRET": TEST_SECRET,
            "HOOKYARD_WORKER_METRICS_PORT": "0",
            **settings,
        }
        app = build_app(Settings.from_env(env), cli_state.registry(), sample=False)
        client = TestClient(app, base_url="http://127.0.0.1:8090")
        client.__enter__()
        opened.append(client)
        return client

    yield build
    for client in opened:
        client.__exit__(None, None, None)
