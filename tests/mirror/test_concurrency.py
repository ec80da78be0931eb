"""Right under concurrency too: events applied from several threads at once, each retried on a database error as
the processor retries a failed attempt, end in the issuing order's rows (PostgreSQL row locks; SQLite's one
writer at a time)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from processor.mirror.apply import apply_event
from processor.mirror.migrate import upgrade
from processor.mirror.queries import users_of_directory
from processor.mirror.schema import directory_users, organization_domains, organizations
from processor.mirror.status import mirror_engine
from tests.mirror.backends import new_database
from tests.mirror.events import DIRECTORY, ORG, T0, apply, organization, organization_domain, reset, snapshot, to_event
from tests.mirror.scenarios import ALL_EVENTS, directory, user

THREADS = 4


def apply_retrying(engine: sa.Engine, body: dict[str, Any], errors: list[BaseException]) -> None:
    for _ in range(20):
        try:
            apply(engine, body)
            return
        except DBAPIError as exc:  # a deadlock or a locked SQLite file: the processor would retry it
            errors.append(exc)
    raise AssertionError(f"{body['event']} failed 20 times")


def test_concurrent_writers_end_in_the_issuing_orders_rows(engine: sa.Engine) -> None:
    # Given every scenario event, and the rows they leave applied once in issuing order
    issued = sorted(ALL_EVENTS, key=lambda body: (body["created_at"], body["id"]))
    for body in issued:
        apply(engine, body)
    expected = snapshot(engine)
    reset(engine)
    # When threads apply them at once, shuffled, each event twice
    deliveries = [*ALL_EVENTS, *ALL_EVENTS]
    random.Random(7).shuffle(deliveries)
    errors: list[BaseException] = []
    failures: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def worker(share: list[dict[str, Any]]) -> None:
        start.wait(timeout=30)
        try:
            for body in share:
                apply_retrying(engine, body, errors)
        except BaseException as exc:  # reported below, with the test's own assertion
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(deliveries[i::THREADS],)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Then every event landed, and the rows are the issuing order's
    assert failures == [] and not any(thread.is_alive() for thread in threads)
    assert snapshot(engine) == expected


@pytest.fixture
def postgres_mirror(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    engine = mirror_engine(new_database(request, "postgresql", tmp_path))
    upgrade(engine)
    yield engine
    engine.dispose()


def lock_waits(engine: sa.Engine) -> int:
    locks = sa.table("pg_locks", sa.column("granted"))
    with engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(locks).where(locks.c.granted.is_(False))) or 0)


@pytest.mark.parametrize("first", ["user", "directory deletion"])
def test_a_user_written_while_its_directory_is_deleted_is_deleted(postgres_mirror: sa.Engine, first: str) -> None:
    engine = postgres_mirror
    created = user("dsync.user.created", 2)
    deleted = directory("dsync.deleted", 4)
    holding, waiting = (created, deleted) if first == "user" else (deleted, created)
    # Given a directory the mirror has, last changed after the user's event was issued (so neither event inserts
    # or updates the directory's row, which would serialize them by itself)
    apply(engine, directory("dsync.activated", 3))
    # And one transaction that applied its event and has not committed yet
    with engine.connect() as conn:
        transaction = conn.begin()
        apply_event(conn, to_event(holding))
        # When the other event is applied meanwhile, from another thread
        other = threading.Thread(target=apply, args=(engine, waiting))
        other.start()
        # Then it waits for the first (on the directory's row) instead of missing it
        deadline = time.monotonic() + 10
        while other.is_alive() and lock_waits(engine) == 0:
            assert time.monotonic() < deadline, "the second transaction neither waited nor finished"
            time.sleep(0.01)
        transaction.commit()
    other.join(timeout=10)
    assert not other.is_alive()
    # And the user is deleted with its directory, whichever committed first
    assert users_of_directory(engine, DIRECTORY, active_only=False) == []
    with engine.connect() as conn:
        assert conn.scalar(sa.select(directory_users.c.deleted_at)) == T0 + timedelta(seconds=4)


def test_a_domain_event_and_its_organizations_update_do_not_deadlock(postgres_mirror: sa.Engine) -> None:
    engine = postgres_mirror
    listed = (("a.com", "verified"), ("b.com", "pending"))
    apply(engine, organization("organization.created", 1, domains=listed))
    verified = organization_domain("organization_domain.verified", 6, domain="b.com")
    errors: list[BaseException] = []

    def apply_domain() -> None:
        try:
            apply(engine, verified)
        except DBAPIError as exc:  # a deadlock, reported below
            errors.append(exc)

    # Given an organization.updated listing b.com, in a transaction that has taken the organization's row (its
    # first write) and not yet its domains'
    with engine.connect() as conn:
        transaction = conn.begin()
        conn.execute(sa.select(organizations.c.id).where(organizations.c.id == ORG).with_for_update())
        # When b.com's own event is applied meanwhile, from another thread
        other = threading.Thread(target=apply_domain)
        other.start()
        deadline = time.monotonic() + 10
        while other.is_alive() and lock_waits(engine) == 0:
            assert time.monotonic() < deadline, "the domain's event neither waited nor finished"
            time.sleep(0.01)
        # And the update goes on to write the domains
        apply_event(conn, to_event(organization("organization.updated", 5, domains=listed)))
        transaction.commit()
    other.join(timeout=10)
    # Then neither was refused as a deadlock: the domain's event waited on the organization's row, before its own
    assert not other.is_alive() and errors == []
    with engine.connect() as conn:
        state = conn.scalar(sa.select(organization_domains.c.state).where(organization_domains.c.domain == "b.com"))
    assert state == "verified"
