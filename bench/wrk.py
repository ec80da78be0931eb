"""Closed-loop saturation load with wrk: one signed delivery, replayed by a Lua script, parsed results.

wrk's Lua has no HMAC, so the body and its signature are made once per run; a signature stays valid for the
receiver's 180 s tolerance, far longer than one run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.deliveries import WEBHOOK_PATH, Delivery

__all__ = ["WrkResult", "parse_wrk", "run_wrk", "write_script", "wrk_binary"]

_SCRIPT = """\
-- Written by bench/wrk.py: POST one signed WorkOS delivery on every request.
local file = io.open("{body_path}", "rb")
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["WorkOS-Signature"] = "{signature}"
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def write_script(delivery: Delivery, directory: Path, name: str) -> Path:
    body_path = directory / f"{name}.body.json"
    body_path.write_bytes(delivery.body)
    script = directory / f"{name}.lua"
    script.write_text(_SCRIPT.format(body_path=body_path, signature=delivery.signature))
    return script


def wrk_command(script: Path, port: int, *, connections: int, duration_s: float, cores: str | None) -> list[str]:
    binary = wrk_binary() or "wrk"
    # wrk takes whole seconds only.
    argv = [binary, "-t1", f"-c{connections}", f"-d{max(1, round(duration_s))}s", "--latency", "-s", str(script)]
    argv.append(f"http://127.0.0.1:{port}{WEBHOOK_PATH}")
    return ["taskset", "-c", cores, *argv] if cores else argv


def run_wrk(script: Path, port: int, *, connections: int, duration_s: float, cores: str | None) -> WrkResult:
    argv = wrk_command(script, port, connections=connections, duration_s=duration_s, cores=cores)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration_s + 30, check=True)
    return parse_wrk(done.stdout)


def parse_wrk(output: str) -> WrkResult:
    """Read requests/s, the 50 % and 99 % latencies, and the error counts from `wrk --latency` output."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rate is None or total is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        requests_per_s=float(rate[1]),
        p50_ms=_latency(output, "50%"),
        p99_ms=_latency(output, "99%"),
        requests=int(total[1]),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def _latency(output: str, label: str) -> float:
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if match is None:
        raise ValueError(f"no {label} latency in wrk output:\n{output}")
    return float(match[1]) * _UNITS[match[2]]
