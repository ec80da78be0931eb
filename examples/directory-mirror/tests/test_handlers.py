"""The example plugin's own tests: production semantics through the `hookyard` fixture Hookyard ships."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from directory_mirror import handlers
from directory_mirror.handlers import mirror_membership, mirror_user

from hookyard.testing import Harness, sample_event

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def mirror_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "mirror.sqlite3"
    monkeypatch.setenv("DIRECTORY_MIRROR_DB", str(path))
    handlers._local.__dict__.clear()
    yield path
    conn = getattr(handlers._local, "conn", None)
    if conn is not None:
        conn.close()
    handlers._local.__dict__.clear()


def users(path: Path) -> dict[str, tuple[str, str]]:
    with sqlite3.connect(path) as conn:
        return {row[0]: (row[1], row[2]) for row in conn.execute("SELECT id, email, state FROM users")}


def test_updates_apply_in_issued_order_and_duplicates_once(hookyard: Callable[..., Harness], mirror_db: Path) -> None:
    yard = hookyard([mirror_user])
    created = sample_event("dsync.user.created", resource_id="directory_user_1", created_at=T0, event_id="event_a")
    updated = sample_event("dsync.user.updated", resource_id="directory_user_1", created_at=T0 + timedelta(seconds=1),
                           event_id="event_b")  # fmt: skip
    updated["data"]["state"] = "inactive"
    # The update arrives first and the creation twice: the window puts them back in order
    yard.deliver(updated)
    yard.deliver(created)
    yard.deliver(created)
    yard.run()
    assert users(mirror_db)["directory_user_1"][1] == "inactive"


def test_a_stale_update_after_a_newer_one_is_skipped_not_applied(
    hookyard: Callable[..., Harness], mirror_db: Path
) -> None:
    yard = hookyard([mirror_user])
    newer = sample_event("dsync.user.updated", resource_id="directory_user_1", created_at=T0 + timedelta(minutes=5),
                         event_id="event_new")  # fmt: skip
    newer["data"]["state"] = "inactive"
    older = sample_event("dsync.user.updated", resource_id="directory_user_1", created_at=T0, event_id="event_old")
    older["data"]["state"] = "active"
    yard.deliver(newer)
    yard.run()
    yard.deliver(older)  # a sender retry, long after
    yard.run()
    assert users(mirror_db)["directory_user_1"][1] == "inactive"
    assert [r["event_id"] for r in yard.skipped()] == ["event_old"]


def test_membership_add_then_remove(hookyard: Callable[..., Harness], mirror_db: Path) -> None:
    yard = hookyard([mirror_membership])
    added = sample_event("dsync.group.user_added", resource_id="directory_user_9", created_at=T0, event_id="event_1")
    removed = sample_event("dsync.group.user_removed", resource_id="directory_user_9",
                           created_at=T0 + timedelta(seconds=2), event_id="event_2")  # fmt: skip
    removed["data"]["group"] = added["data"]["group"]
    yard.deliver(removed)
    yard.deliver(added)
    yard.run()
    with sqlite3.connect(mirror_db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM memberships").fetchone() == (0,)


def test_the_plugin_registers_through_its_entry_point() -> None:
    from importlib.metadata import entry_points

    [ep] = [ep for ep in entry_points(group="hookyard.handlers") if ep.name == "directory_mirror"]
    assert ep.value == "directory_mirror.handlers"
