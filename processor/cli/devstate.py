"""What `hookyard dev` leaves in its data directory (`HOOKYARD_DATA_DIR`): the development webhook secret and the
embedded Redis's port and pid — so the other verbs, run from another terminal, find both by themselves."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = [
    "REDIS_DIR",
    "REDIS_PID_FILE",
    "REDIS_PORT_FILE",
    "SECRET_FILE",
    "dev_redis_url",
    "is_redis_server",
    "load_or_create_secret",
    "running_redis_pid",
    "saved_secret",
]

SECRET_FILE = "webhook-secret"  # noqa: S105 - a file name, not a secret
REDIS_DIR = "redis"
REDIS_PORT_FILE = "redis.port"
REDIS_PID_FILE = "redis.pid"


def load_or_create_secret(path: Path) -> tuple[str, bool]:
    """The development secret in `path`, created (0600) on first use; True if it was just created."""
    saved = _read(path)
    if saved:
        return saved, False
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(24)
    # 0600 before a byte is written, so others never get to read it; fchmod covers an existing empty file,
    # which keeps its old mode through O_CREAT.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    return secret, True


def saved_secret(data_dir: Path) -> str | None:
    return _read(data_dir / SECRET_FILE) or None


def running_redis_pid(data_dir: Path) -> int | None:
    """The pid of the embedded redis-server a `hookyard dev` started on this data directory, if it still runs."""
    try:
        pid = int((data_dir / REDIS_PID_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if is_redis_server(pid) else None


def dev_redis_url(data_dir: Path) -> str | None:
    """The URL of the embedded Redis of a running `hookyard dev`, or None."""
    if running_redis_pid(data_dir) is None:
        return None
    try:
        port = int((data_dir / REDIS_PORT_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return f"redis://127.0.0.1:{port}/0"


def is_redis_server(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): a live pid is taken at its word


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
