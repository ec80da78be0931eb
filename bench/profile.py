"""`python -m bench.profile [contender]`: where one receiver contender's CPU goes under saturation, in µs/request.

Runs the contender exactly as `python -m bench` does (pinned to core 0, Redis and wrk on core 1), samples it
with py-spy for the length of one saturation run, and prints the functions with the largest share of samples,
converted to µs per request with the process's measured CPU time. The raw py-spy stacks are kept for a flame
graph (`py-spy` reads them back; or any collapsed-stack viewer).
"""

from __future__ import annotations

import argparse
import collections
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.deliveries import EVENT_TYPE, signed_delivery
from bench.plan import FULL
from bench.processes import PYTHON, cpu_seconds, pin
from bench.receiver_bench import CONTENDERS, LOAD_CORE, ReceiverBench
from bench.stats import Measurements
from bench.wrk import run_wrk, write_script
from processor.devtools.embedded_redis import EmbeddedRedis
from processor.devtools.samples import sample_event

__all__ = ["main"]

_RATE_HZ = 250
_FRAME_LINE = re.compile(r":\d+\)$")


def _py_spy() -> str:
    return str(Path(PYTHON).with_name("py-spy"))


def summarize(stacks: Path, us_per_request: float, top: int) -> str:
    """Self and inclusive shares of the sampled stacks, with each share as µs of CPU per request."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in stacks.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [_FRAME_LINE.sub(")", frame) for frame in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples; {us_per_request:.0f} µs of CPU per request", "", "self:"]
    for frame, n in own.most_common(top):
        lines.append(f"  {100 * n / total:5.1f} %  {us_per_request * n / total:6.1f} µs  {frame}")
    lines += ["", "inclusive:"]
    for frame, n in inclusive.most_common(top):
        lines.append(f"  {100 * n / total:5.1f} %  {us_per_request * n / total:6.1f} µs  {frame}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("contender", nargs="?", default="hookyard", choices=CONTENDERS)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--output", type=Path, help="where to keep py-spy's raw stacks")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="hookyard-profile-"))
    stacks = args.output or workdir / f"{args.contender}.stacks.txt"
    redis_server = EmbeddedRedis(workdir / "redis")
    pin(0, {LOAD_CORE})
    try:
        redis_server.start()
        assert redis_server.pid is not None
        pin(redis_server.pid, {LOAD_CORE})
        bench = ReceiverBench(FULL, workdir, redis_server.url, measurements=Measurements())
        with bench.running():
            port, pid = bench.ports[args.contender], bench.servers[args.contender].pid
            delivery = signed_delivery(sample_event(EVENT_TYPE, rng=random.Random(1)))
            script = write_script(delivery, workdir, args.contender)
            run_wrk(script, port, connections=FULL.connections, duration_s=FULL.warmup_s, cores=str(LOAD_CORE))
            # --nonblocking: py-spy must not pause the server it measures.
            spy = subprocess.Popen(
                ["taskset", "-c", str(LOAD_CORE), _py_spy(), "record", "--nonblocking", "-r", str(_RATE_HZ),
                 "-d", str(args.seconds), "-f", "raw", "-o", str(stacks), "-p", str(pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            before = cpu_seconds(pid)
            result = run_wrk(script, port, connections=FULL.connections, duration_s=args.seconds, cores=str(LOAD_CORE))
            used = cpu_seconds(pid) - before
            spy.wait()
    finally:
        redis_server.stop()
    print(f"{args.contender}: {result.requests_per_s:,.0f} req/s, p99 {result.p99_ms:.2f} ms, stacks in {stacks}")
    print(summarize(stacks, used / max(1, result.requests) * 1e6, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
