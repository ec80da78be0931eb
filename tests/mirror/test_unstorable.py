"""Valid data PostgreSQL once refused (a U+0000, a value longer than 255 characters) is stored as on SQLite, and
data a database does refuse is a malformed event, dead-lettered at once rather than retried for hours."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from processor.mirror.handlers import bind, mirror_directories
from processor.mirror.payload import MalformedEvent
from processor.mirror.schema import directory_users
from tests.mirror.events import envelope, to_event

LONG_EMAIL = "a" * 250 + "@x.example"


def user_event(seconds: float, **fields: Any) -> dict[str, Any]:
    body = envelope("dsync.user.created", seconds)
    body["data"].update(fields)
    return body


def stored_user(engine: sa.Engine, user_id: str) -> sa.Row[Any] | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(directory_users).where(directory_users.c.id == user_id)).one_or_none()


def test_long_values_and_nul_characters_are_stored_alike_on_both_backends(engine: sa.Engine, mirror_url: str) -> None:
    # Given a directory user whose IdP sent a 300-character username, a 260-character email, a role slug of 300,
    # and a U+0000 in its job title and inside its custom attributes
    bind(mirror_url)
    body = user_event(
        40,
        username="u" * 300,
        email=LONG_EMAIL,
        role={"slug": "r" * 300},
        job_title="Eng\x00ineer",
        custom_attributes={"depart\x00ment": ["Eng\x00"]},
    )
    # When the mirror's handler takes it
    mirror_directories(to_event(body))
    # Then every value is stored whole, without the U+0000, the same on SQLite and PostgreSQL
    row = stored_user(engine, body["data"]["id"])
    assert row is not None
    assert (row.username, row.email, row.role) == ("u" * 300, LONG_EMAIL, "r" * 300)
    assert row.job_title == "Engineer"
    assert row.custom_attributes == {"department": ["Eng"]}


def _refuse_job_title(engine: sa.Engine, refused: str) -> None:
    # A rule the database enforces and the mirror does not know (as a DBA's constraint would be).
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON mirror_directory_users "
                f"WHEN NEW.job_title = '{refused}' BEGIN SELECT RAISE(ABORT, 'job title refused'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF NEW.job_title = '{refused}' THEN "
                "RAISE EXCEPTION 'job title refused' USING ERRCODE = 'check_violation'; END IF; "
                "RETURN NEW; END $$"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON mirror_directory_users FOR EACH ROW EXECUTE FUNCTION refuse()"
            )


def test_data_the_database_refuses_is_a_malformed_event(engine: sa.Engine, mirror_url: str) -> None:
    # Given a mirror whose database refuses one job title
    bind(mirror_url)
    _refuse_job_title(engine, "Refused")
    body = user_event(40, job_title="Refused")
    # When an event carrying it is handled
    with pytest.raises(MalformedEvent, match=r"dsync.user.created: the mirror database refused its data \((\w+)\)"):
        mirror_directories(to_event(body))
    # Then nothing of it was written
    assert stored_user(engine, body["data"]["id"]) is None
    # And an event the database takes is still written
    accepted = user_event(41, job_title="Accepted")
    mirror_directories(to_event(accepted))
    assert stored_user(engine, accepted["data"]["id"]) is not None


@pytest.mark.parametrize("mirror_url", ["postgresql"], indirect=True)
def test_an_id_longer_than_its_column_is_a_malformed_event_on_postgresql(engine: sa.Engine, mirror_url: str) -> None:
    # Given a directory user whose id is longer than any WorkOS id (ids stay bounded columns)
    bind(mirror_url)
    body = user_event(40)
    body["data"]["id"] = "directory_user_" + "x" * 300
    # When the handler takes it on PostgreSQL, which checks the length
    # Then it is dead-lettered as malformed (StringDataRightTruncation), not retried as an outage
    with pytest.raises(MalformedEvent, match="StringDataRightTruncation"):
        mirror_directories(to_event(body))
