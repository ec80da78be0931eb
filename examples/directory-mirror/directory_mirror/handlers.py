"""The plugin's handlers. Each write is idempotent (upsert / delete by id), so the one documented re-run window
(`event.attempt > 1` after a crash before completion was recorded) needs no special care."""

from __future__ import annotations

import os
import sqlite3
import threading

from hookyard import Event, RetryLater, handler

_local = threading.local()


def database() -> sqlite3.Connection:
    """One connection per worker thread (sqlite3 connections are not shared across threads)."""
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(os.environ.get("DIRECTORY_MIRROR_DB", ":memory:"), timeout=5)
        conn.executescript(
            """
            CREATE TABLE IF NOT EXISTS users (
                id TEXT PRIMARY KEY, directory_id TEXT, email TEXT, state TEXT, issued_at TEXT);
            CREATE TABLE IF NOT EXISTS memberships (
                group_id TEXT, user_id TEXT, PRIMARY KEY (group_id, user_id));
            """
        )
        _local.conn = conn
    return conn


def _primary_email(data: dict[str, object]) -> str | None:
    emails = data.get("emails")
    if isinstance(emails, list):
        for entry in emails:
            if isinstance(entry, dict) and entry.get("primary"):
                value = entry.get("value")
                return value if isinstance(value, str) else None
    return None


@handler("dsync.user.*", name="directory_mirror.users", late="skip", max_attempts=10)
def mirror_user(event: Event) -> None:
    conn = database()
    user_id = event.data.get("id")
    if not isinstance(user_id, str):
        return
    try:
        with conn:
            if event.type == "dsync.user.deleted":
                conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
            else:
                conn.execute(
                    "INSERT INTO users (id, directory_id, email, state, issued_at) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT(id) DO UPDATE SET directory_id = excluded.directory_id, email = excluded.email,"
                    " state = excluded.state, issued_at = excluded.issued_at",
                    (
                        user_id,
                        event.data.get("directory_id"),
                        _primary_email(event.data),
                        event.data.get("state"),
                        event.issued_at.isoformat(),
                    ),
                )
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc):
            raise RetryLater(1, "mirror database is busy") from exc
        raise


@handler("dsync.group.user_added", "dsync.group.user_removed", name="directory_mirror.memberships")
def mirror_membership(event: Event) -> None:
    group, user = event.data.get("group"), event.data.get("user")
    if not (isinstance(group, dict) and isinstance(user, dict)):
        return
    key = (group.get("id"), user.get("id"))
    with database() as conn:
        if event.type == "dsync.group.user_added":
            conn.execute("INSERT OR IGNORE INTO memberships (group_id, user_id) VALUES (?, ?)", key)
        else:
            conn.execute("DELETE FROM memberships WHERE group_id = ? AND user_id = ?", key)
