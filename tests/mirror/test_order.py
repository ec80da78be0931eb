"""The mirror is right under reordering and redelivery on its own: whatever order the events of a sequence arrive
in, and however often each arrives, the rows end as they do when the events arrive once, in issuing order."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor.mirror.queries import groups_of_user, users_of_directory
from processor.mirror.schema import connections, directory_users, organization_domains
from processor.mirror.status import organization_status
from tests.mirror.events import DIRECTORY, ORG, T0, apply, envelope, reset, snapshot
from tests.mirror.scenarios import ALL_EVENTS, CONNECTION, SEQUENCES, USER, connection, user


def final_rows(engine: sa.Engine, bodies: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    reset(engine)
    for body in bodies:
        apply(engine, body)
    return snapshot(engine)


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_every_permutation_ends_in_the_issuing_orders_rows(engine: sa.Engine, name: str) -> None:
    # Given a sequence of events about the same objects, and the rows it leaves when applied in issuing order
    sequence = SEQUENCES[name]
    expected = final_rows(engine, sequence)
    assert any(expected.values())
    for order in itertools.permutations(sequence):
        # When the events arrive in this order, the first one delivered again at the end
        got = final_rows(engine, [*order, order[0]])
        # Then the rows are the same, to the last column
        assert got == expected, [body["event"] for body in order]


def test_the_issuing_orders_rows_are_right(engine: sa.Engine) -> None:
    # Given a user created, updated then deleted, and a connection that ends deleted
    for body in [
        *SEQUENCES["user created, updated, deleted"],
        *SEQUENCES["connection activated, deactivated, activated, deleted"],
    ]:
        apply(engine, body)
    with engine.connect() as conn:
        person = conn.execute(sa.select(directory_users).where(directory_users.c.id == USER)).one()
        sso = conn.execute(sa.select(connections).where(connections.c.id == CONNECTION)).one()
    # Then the user keeps the delete's values and time, and is gone from its directory
    assert person.event_type == "dsync.user.deleted" and person.deleted_at == T0 + timedelta(seconds=3)
    assert users_of_directory(engine, DIRECTORY, active_only=False) == []
    # And the connection was active again from its third event until deleted at its fourth
    assert (sso.state, sso.deleted_at) == ("inactive", T0 + timedelta(seconds=4))
    # When an update issued before the delete arrives late
    apply(engine, user("dsync.user.updated", 2.5, job_title="Principal"))
    # Then it does not bring the user back, nor change it
    assert users_of_directory(engine, DIRECTORY, active_only=False) == []
    with engine.connect() as conn:
        again = conn.execute(sa.select(directory_users).where(directory_users.c.id == USER)).one()
    assert again == person


def test_since_is_when_the_current_state_began(engine: sa.Engine) -> None:
    # Given a connection activated, deactivated, activated again, whose events arrive newest first
    for seconds, kind in ((30, "connection.activated"), (20, "connection.deactivated"), (10, "connection.activated")):
        apply(engine, connection(kind, seconds))
    # Then it is active since the second activation, not the first
    status = organization_status(engine, ORG)
    assert status is not None
    assert (status.sso_state, status.sso_since) == ("active", T0 + timedelta(seconds=30))


@pytest.mark.parametrize(
    ("deactivated_id", "activated_id", "expected"),
    [
        ("event_01ADV0002", "event_01ADV0003", "active"),
        ("event_01ADV0003", "event_01ADV0002", "inactive"),
    ],
)
def test_since_is_set_when_two_state_reports_share_an_issued_time(
    engine: sa.Engine, deactivated_id: str, activated_id: str, expected: str
) -> None:
    # Given a connection activated at 10 s, then deactivated and activated again in the same millisecond (20 s),
    # the event ids breaking the tie one way or the other
    reports = [
        envelope("connection.activated", 10, resource_id=CONNECTION, event_id="event_01ADV0001"),
        envelope("connection.deactivated", 20, resource_id=CONNECTION, event_id=deactivated_id),
        envelope("connection.activated", 20, resource_id=CONNECTION, event_id=activated_id),
    ]
    for order in itertools.permutations(reports):
        # When they arrive in any order
        reset(engine)
        for body in order:
            apply(engine, body)
        # Then the connection is in the state of the report with the greater version, since 20 s
        status = organization_status(engine, ORG)
        assert status is not None
        assert (status.sso_state, status.sso_since) == (expected, T0 + timedelta(seconds=20)), [
            body["id"] for body in order
        ]


def test_a_late_member_of_a_deleted_directory_is_deleted_with_it(engine: sa.Engine) -> None:
    # Given a directory deleted before its user's and membership's events arrive
    deleted, created, added = SEQUENCES["directory activated, user, membership, directory deleted"][1:][::-1]
    for body in (deleted, created, added):
        apply(engine, body)
    # Then neither the user nor the membership is alive
    assert users_of_directory(engine, DIRECTORY, active_only=False) == []
    assert groups_of_user(engine, USER) == []
    status = organization_status(engine, ORG)
    assert status is not None and (status.users, status.groups, status.directory_state) == (0, 0, None)


def test_a_late_domain_of_a_deleted_organization_is_deleted_with_it(engine: sa.Engine) -> None:
    # Given an organization deleted (its delete listing a.com only) before b.com's created event arrives
    created, domain_created, deleted = SEQUENCES[
        "organization created, a domain created, organization deleted listing another"
    ]
    for body in (created, deleted, domain_created):
        apply(engine, body)
    # Then both domains are deleted, at the organization's deletion time
    with engine.connect() as conn:
        rows = conn.execute(sa.select(organization_domains.c.domain, organization_domains.c.deleted_at)).all()
    assert sorted(rows) == [("a.com", T0 + timedelta(seconds=3)), ("b.com", T0 + timedelta(seconds=3))]


deliveries = st.lists(st.sampled_from(range(len(ALL_EVENTS))), min_size=1, max_size=12).flatmap(
    lambda chosen: st.tuples(
        st.just(chosen),
        st.permutations(chosen + chosen[: len(chosen) // 2]),  # the order they arrive in, some twice
    )
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=deliveries)
def test_any_order_and_duplication_leaves_the_issuing_orders_rows(engine: sa.Engine, case: Any) -> None:
    chosen, arrival = case
    # Given some events of several objects; issuing order is their issued time (event id breaks a tie)
    issued = sorted(set(chosen), key=lambda i: (ALL_EVENTS[i]["created_at"], ALL_EVENTS[i]["id"]))
    expected = final_rows(engine, [ALL_EVENTS[i] for i in issued])
    # When they arrive in any order, some more than once
    got = final_rows(engine, [ALL_EVENTS[i] for i in arrival])
    # Then the rows are the same
    assert got == expected
