"""What `hookyard dev` leaves in its data directory (`HOOKYARD_DATA_DIR`): the development webhook secret, the
embedded Redis's port and pid, and the addresses of the running stack — so the other verbs, run from another
terminal, find them by themselves."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

__all__ = [
    "ADDRESSES_FILE",
    "REDIS_DIR",
    "REDIS_PID_FILE",
    "REDIS_PORT_FILE",
    "SECRET_FILE",
    "DevStack",
    "dev_redis_url",
    "forget_stack",
    "is_redis_server",
    "load_or_create_secret",
    "record_stack",
    "running_redis_pid",
    "running_stack",
    "saved_secret",
]

SECRET_FILE = "webhook-secret"  # noqa: S105 - a file name, not a secret
REDIS_DIR = "redis"
REDIS_PORT_FILE = "redis.port"
REDIS_PID_FILE = "redis.pid"
ADDRESSES_FILE = "dev.json"


@dataclass(frozen=True, slots=True)
class DevStack:
    """The addresses of a running `hookyard dev`, and the settings that gave them (`HOOKYARD_PORT`, ...), so a
    verb whose environment names none of them reaches the same stack."""

    pid: int
    receiver_url: str
    metrics_url: str
    worker_metrics_url: str
    redis_url: str
    settings: Mapping[str, str]


def record_stack(data_dir: Path, stack: DevStack) -> None:
    document = {
        "pid": stack.pid,
        "receiver": stack.receiver_url,
        "metrics": stack.metrics_url,
        "worker_metrics": stack.worker_metrics_url,
        "redis": stack.redis_url,
        "settings": dict(stack.settings),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    # Written whole, then renamed: a verb reading it at the same moment never sees half a document.
    part = data_dir / (ADDRESSES_FILE + ".part")
    part.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    part.replace(data_dir / ADDRESSES_FILE)


def forget_stack(data_dir: Path) -> None:
    (data_dir / ADDRESSES_FILE).unlink(missing_ok=True)


def running_stack(data_dir: Path) -> DevStack | None:
    """The stack a `hookyard dev` recorded on this data directory, if that `hookyard dev` still runs."""
    try:
        document = orjson.loads((data_dir / ADDRESSES_FILE).read_bytes())
        stack = DevStack(
            int(document["pid"]),
            str(document["receiver"]),
            str(document["metrics"]),
            str(document["worker_metrics"]),
            str(document["redis"]),
            {str(k): str(v) for k, v in dict(document["settings"]).items()},
        )
    except (FileNotFoundError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None  # none, or not one this version wrote: the environment's addresses it is
    # A `hookyard dev` killed with SIGKILL leaves its record behind: only a live pid counts.
    return stack if _alive(stack.pid) else None


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
    if not _alive(pid):
        return False
    try:
        return b"redis-server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc (macOS): a live pid is taken at its word


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
