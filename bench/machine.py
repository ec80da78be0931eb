"""What the numbers were measured on: cores, CPU model, load, and the versions of everything under test."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from bench.wrk import wrk_binary
from processor.devtools.embedded_redis import redis_server_binary

__all__ = ["Machine", "describe_machine", "load_average"]

_PACKAGES = ("uvicorn", "starlette", "uvloop", "httptools", "dramatiq", "redis", "hiredis", "workos", "structlog")


@dataclass(frozen=True, slots=True)
class Machine:
    cores: int
    cpu_model: str
    kernel: str
    python: str
    packages: dict[str, str]
    redis_server: str
    wrk: str


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout
    except OSError:
        return ""


def _cpu_model() -> str:
    for line in _run(["lscpu"]).splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _package(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _redis_server() -> str:
    # "Redis server v=6.2.14 sha=… malloc=libc bits=64 build=…"
    words = _run([redis_server_binary(), "--version"]).split()
    return next((w[2:] for w in words if w.startswith("v=")), "unknown")


def _wrk() -> str:
    binary = wrk_binary()
    if binary is None:
        return "not installed (the bundled closed-loop generator stood in)"
    # wrk prints its version in the usage text on stderr: "wrk debian/4.1.0-3+b2 [epoll] Copyright …"
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=False)
    first = (done.stdout or done.stderr).splitlines()
    return " ".join(first[0].split()[:3]) if first else "unknown"


def describe_machine() -> Machine:
    return Machine(
        cores=os.cpu_count() or 1,
        cpu_model=_cpu_model(),
        kernel=platform.release(),
        python=platform.python_version(),
        packages={name: _package(name) for name in _PACKAGES},
        redis_server=_redis_server(),
        wrk=_wrk(),
    )


def load_average() -> tuple[float, float, float]:
    """1, 5 and 15 minute load averages: how busy the neighbours were (this run adds ~1-2 itself)."""
    return os.getloadavg()
