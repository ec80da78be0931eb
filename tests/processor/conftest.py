"""The harness most processor tests drive: production's ingest and runner on the session's Redis, with a private
registry. A module that needs other harness settings overrides `harness_options`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from processor import Registry
from processor.testing import Harness


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
