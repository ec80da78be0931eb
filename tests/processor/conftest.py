"""The harness most processor tests drive: production's ingest and runner on the session's Redis, with a private
registry. A module that needs other harness settings overrides `harness_options`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from processor import Registry
from processor.testing import Harness
from tests.processor.test_worker_processes import Processor


@pytest.fixture
def registry() -> Registry:
    return Registry()


@pytest.fixture
def harness_options() -> dict[str, Any]:
    return {}


@pytest.fixture
def yard(registry: Registry, redis_url: str, harness_options: dict[str, Any]) -> Iterator[Harness]:
    harness = Harness(registry, redis_url=redis_url, **harness_options)
    yield harness
    harness.close()


@pytest.fixture
def processor_factory(redis_url: str) -> Iterator[list[Processor]]:
    """Real `python -m processor` fleets a test starts; each is stopped (SIGTERM) at the end."""
    started: list[Processor] = []
    yield started
    for proc in started:
        proc.stop()
