"""The built-in mirror through the real processor (the harness runs production's ingest and runner on a private
Redis): it fills the database, a malformed event is dead-lettered at once, a database that is not there yet is
retried until it is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from processor.mirror.handlers import bind, mirror_connections, mirror_directories, mirror_organizations, mirror_users
from processor.mirror.migrate import upgrade
from processor.mirror.queries import groups_of_user
from processor.mirror.schema import directory_users
from processor.mirror.status import mirror_engine, organization_status
from processor.testing import Harness
from tests.fixtures import WORKOS_SAMPLES
from tests.mirror.backends import new_database

MIRROR = [mirror_organizations, mirror_connections, mirror_directories, mirror_users]
ROOT = Path(__file__).resolve().parents[2]


def test_the_built_in_mirror_fills_the_database(engine: sa.Engine, mirror_url: str, redis_url: str) -> None:
    # Given the mirror's handlers bound to a migrated database, run by the processor
    bind(mirror_url)
    with Harness(MIRROR, redis_url=redis_url) as yard:
        # When every WorkOS sample is delivered, the signed connection test vector as its exact bytes
        for sample in sorted(WORKOS_SAMPLES.iterdir()):
            if sample.suffix in (".json", ".body"):
                yard.deliver(sample.read_bytes())
        yard.run()
        # Then every event was handled, none set aside
        assert yard.dead_letters() == []
    # And the mirror has what they said
    sso = organization_status(engine, "org_01EHWNCE74X7JSDV0X3SZ3KJNY")
    assert sso is not None and (sso.sso_state, sso.sso_connection_type) == ("active", "OktaSAML")
    deleted = organization_status(engine, "org_01EZTR6WYX1A0DSE2CYMGXQ24Y")
    assert deleted is not None and deleted.directory_state is None and deleted.last_sync_at is not None
    assert [g.name for g in groups_of_user(engine, "directory_user_01FMV8XE3E2CJH7TRBKMSBH8QF")] == [
        "Account Management"
    ]
    with engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(directory_users)) == 4


def test_a_malformed_event_is_dead_lettered_at_once(engine: sa.Engine, mirror_url: str, redis_url: str) -> None:
    # Given the mirror's handlers
    bind(mirror_url)
    with Harness(MIRROR, redis_url=redis_url) as yard:
        # When a user event without the user's id or directory arrives
        yard.deliver({"id": "event_01MALFORMED", "event": "dsync.user.created", "data": {"state": "active"}})
        yard.run()
        # Then it is a dead letter after its first attempt, saying what is missing
        [letter] = yard.dead_letters()
    assert (letter["handler"], letter["error_type"], letter["attempts"]) == (
        "hookyard.mirror.directories",
        "MalformedEvent",
        1,
    )
    assert "data.directory_id is missing" in letter["error_message"]


def test_a_database_not_there_yet_is_retried_until_it_is(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, mirror_url: str
) -> None:
    # Given a mirror URL whose database does not exist yet (SQLite: its directory; PostgreSQL: the database)
    backend = "sqlite" if mirror_url.startswith("sqlite") else "postgresql"
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'not-yet' / 'mirror.sqlite3'}"
    else:
        url = mirror_url.rsplit("/", 1)[0] + f"/later_{uuid.uuid4().hex[:12]}"
    bind(url)
    with Harness(MIRROR, redis_url=redis_url) as yard:
        yard.deliver((WORKOS_SAMPLES / "dsync.activated.json").read_bytes())
        # When the handler runs
        yard.step()
        # Then the attempt failed and is due again, not dead-lettered
        assert yard.dead_letters() == []
        assert yard.next_due_ms() is not None
        # When the database appears and is migrated
        if backend == "sqlite":
            (tmp_path / "not-yet").mkdir()
        else:
            created = new_database(request, backend, tmp_path)
            url = created
            bind(url)
        made = mirror_engine(url)
        upgrade(made)
        # Then the retry writes the event
        yard.run()
        assert yard.dead_letters() == []
    status = organization_status(made, "org_01EZTR6WYX1A0DSE2CYMGXQ24Y")
    made.dispose()
    assert status is not None and status.directory_state == "active"


def test_a_worker_loads_the_mirror_only_when_its_url_is_set(tmp_path: Path) -> None:
    mirror_url = f"sqlite:///{tmp_path / 'mirror.sqlite3'}"  # loading handlers connects to nothing

    # Given the environment a worker starts with, with and without HOOKYARD_MIRROR_URL
    def handlers(extra: dict[str, str]) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HOOKYARD_ENTRY_POINTS": "false", **extra}
        env.pop("REDIS_URL", None)
        # When `hookyard handlers --local` imports the handler modules as a worker would (in its own process)
        done = subprocess.run(
            [sys.executable, "-m", "processor.cli", "handlers", "--local", "--json"],
            env=env, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        return {h["name"]: h["order_by"] for h in json.loads(done.stdout)["handlers"]}

    # Then the built-in mirror handlers are there, each with its ordering, only when the URL is set
    assert handlers({"HOOKYARD_MIRROR_URL": mirror_url}) == {
        "hookyard.mirror.connections": "resource",
        "hookyard.mirror.directories": "directory",
        "hookyard.mirror.organizations": "organization",
        "hookyard.mirror.users": "resource",
    }
    assert handlers({"HOOKYARD_MIRROR_URL": ""}) == {}
