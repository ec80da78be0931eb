"""`python -m bench [--quick]`: run every part, interleaved round by round, and write docs/benchmarks.md."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.capacity_part import run_capacity
from bench.capacity_report import write_capacity
from bench.console_bench import ConsoleBench
from bench.end_to_end import EndToEnd
from bench.machine import describe_machine, load_average
from bench.plan import FULL, QUICK, Plan
from bench.processes import ROOT, pin
from bench.processor_bench import ROUND_VARIANTS, WINDOW_VARIANT, ProcessorBench
from bench.receiver_bench import CONTENDERS, LOAD_CORE, ReceiverBench
from bench.recovery import RecoveryBench
from bench.redis_memory import RedisMemoryBench
from bench.report import RunRecord, write_report
from processor.devtools.embedded_redis import EmbeddedRedis
from shared.logging import configure_logging

__all__ = ["main"]

PARTS = ("receiver", "processor", "end-to-end", "recovery", "redis-memory", "console", "capacity")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round (< 1 minute): a smoke run")
    parser.add_argument("--rounds", type=int, help="rounds of interleaved contenders (default: 3, quick: 1)")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md", help="report to write")
    parser.add_argument("--capacity-output", type=Path,
                        help="the capacity part's report (default: capacity.md beside --output)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write every per-round value here (default: bench/results/)")
    parser.add_argument("--only", choices=PARTS, action="append", help="run only this part (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the run directory (server and worker logs)")
    return parser.parse_args(argv)


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    plan: Plan = QUICK if args.quick else FULL
    if args.rounds:
        plan = dataclasses.replace(plan, rounds=args.rounds)
    parts = set(args.only or PARTS)
    workdir = Path(tempfile.mkdtemp(prefix="hookyard-bench-"))
    run = RunRecord(plan=plan, machine=describe_machine(), started_at=datetime.now(UTC), load_start=load_average())
    started = time.monotonic()
    all_cores = set(range(os.cpu_count() or 1))
    redis_server = EmbeddedRedis(workdir / "redis")
    _log(f"{plan.name} run, {plan.rounds} round(s); logs in {workdir}")
    try:
        redis_server.start()
        assert redis_server.pid is not None
        steps = {
            "receiver": lambda: _run_receiver(plan, workdir, redis_server, run),
            "processor": lambda: _run_processor(plan, workdir, redis_server, run),
            "end-to-end": lambda: _run_end_to_end(plan, workdir, redis_server, run),
            "recovery": lambda: _run_recovery(plan, workdir, redis_server, run),
            "redis-memory": lambda: _run_redis_memory(plan, redis_server, run),
            "console": lambda: _run_console(plan, redis_server, run),
            "capacity": lambda: _run_capacity(args, plan, workdir, run),
        }
        for part in PARTS:
            if part not in parts:
                continue
            try:
                steps[part]()
            except Exception as exc:
                # One broken part (a stack that would not start, a timeout) must not cost the others' numbers.
                _log(f"{part} failed:\n{traceback.format_exc()}")
                run.failures.append(f"{part}: {type(exc).__name__}: {exc}")
    finally:
        redis_server.stop()
        pin(0, all_cores)
    run.duration_s = time.monotonic() - started
    run.load_end = load_average()
    if parts - {"capacity"}:  # the capacity part alone leaves docs/benchmarks.md as it is
        write_report(run, args.output, echo=print)
        _log(f"wrote {args.output}")
    _write_json(run, args.json or ROOT / "bench" / "results" / f"{run.started_at:%Y%m%dT%H%M%S}-{plan.name}.json")
    _log(f"done in {run.duration_s / 60:.1f} minutes")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if run.failures else 0


def _run_receiver(plan: Plan, workdir: Path, redis_server: EmbeddedRedis, run: RunRecord) -> None:
    assert redis_server.pid is not None
    all_cores = set(range(os.cpu_count() or 1))
    # Load generator, Redis and this process on one core; each server alone on the other.
    pin(redis_server.pid, {LOAD_CORE})
    pin(0, {LOAD_CORE})
    try:
        _receiver_rounds(plan, workdir, redis_server, run)
    finally:
        pin(redis_server.pid, all_cores)
        pin(0, all_cores)


def _receiver_rounds(plan: Plan, workdir: Path, redis_server: EmbeddedRedis, run: RunRecord) -> None:
    bench = ReceiverBench(plan, workdir, redis_server.url, measurements=run.receiver)
    with bench.running():
        for round_index in range(plan.rounds):
            for contender in CONTENDERS:
                rps = bench.run(contender, round_index)
                _log(f"receiver round {round_index + 1}: {contender} {rps:,.0f} req/s")
        commands = bench.commands()
    run.receiver_servers = commands.servers
    run.receiver_saturation = commands.saturation
    run.receiver_fixed_rate = commands.fixed_rate


def _run_processor(plan: Plan, workdir: Path, redis_server: EmbeddedRedis, run: RunRecord) -> None:
    assert redis_server.pid is not None
    bench = ProcessorBench(plan, workdir, redis_server.url, redis_server.pid, measurements=run.processor)
    try:
        runs = [(r, v) for r in range(plan.rounds) for v in ROUND_VARIANTS] + [(0, WINDOW_VARIANT)]
        for round_index, variant in runs:
            drain = bench.run(variant, round_index)
            _log(f"processor round {round_index + 1}: {variant.name} {drain.events_per_s:,.0f} events/s")
            if math.isnan(drain.events_per_s):
                _log(bench.failures[-1])
    finally:
        bench.close()
    run.failures += bench.failures
    run.processor_commands = bench.commands
    run.processor_sizes = {v.name: bench.size(v) for v in (*ROUND_VARIANTS, WINDOW_VARIANT)}
    run.duplicate_deliveries = bench.duplicate_deliveries


def _run_end_to_end(plan: Plan, workdir: Path, redis_server: EmbeddedRedis, run: RunRecord) -> None:
    _log("end to end: delivery lag and memory")
    e2e = EndToEnd(plan, workdir, redis_server.url)
    try:
        run.lag, run.memory = e2e.run()
    finally:
        run.e2e_commands = e2e.commands
        run.e2e_warnings = dict(e2e.warnings)


def _run_recovery(plan: Plan, workdir: Path, redis_server: EmbeddedRedis, run: RunRecord) -> None:
    _log(f"crash recovery: {plan.recoveries} SIGKILLs")
    recovery = RecoveryBench(plan, workdir, redis_server.url)
    run.recovery = recovery.run()
    run.recovery_command = recovery.command


def _run_console(plan: Plan, redis_server: EmbeddedRedis, run: RunRecord) -> None:
    _log(f"console: pages over an empty store, then over {plan.console_events:,} events")
    configure_logging("warning")
    run.console = ConsoleBench(plan, redis_server.url, progress=_log).run()


def _run_redis_memory(plan: Plan, redis_server: EmbeddedRedis, run: RunRecord) -> None:
    _log(f"redis memory: {plan.memory_events:,} events per case")
    # The ingester and runner run in this process: their per-event debug lines would drown the bench's own.
    configure_logging("warning")
    run.redis_memory = RedisMemoryBench(plan, redis_server.url, progress=_log).run()


def _run_capacity(args: argparse.Namespace, plan: Plan, workdir: Path, run: RunRecord) -> None:
    _log("capacity: unit costs on one server and on a cluster, ingest shards x processes, ack latency")
    configure_logging("warning")
    record = run_capacity(args.quick, args.rounds, workdir, _log)
    output = args.capacity_output or args.output.with_name("capacity.md")
    command = "make bench" if plan is FULL and not args.only else "python -m bench " + " ".join(_shown_args(args))
    write_capacity(record, run.machine, run.started_at, command, output)
    _log(f"wrote {output}")
    results = ROOT / "bench" / "results" / f"{run.started_at:%Y%m%dT%H%M%S}-{plan.name}-capacity.json"
    results.parent.mkdir(parents=True, exist_ok=True)
    values = {"units": record.units.as_dict(), "ingest": record.ingest.as_dict(), "ack": record.ack.as_dict()}
    results.write_text(json.dumps({"plan": dataclasses.asdict(record.plan), **values}, indent=2, default=str))
    run.failures += [f"capacity: {failure}" for failure in record.failures]


def _shown_args(args: argparse.Namespace) -> list[str]:
    shown = ["--quick"] if args.quick else []
    shown += [f"--rounds {args.rounds}"] if args.rounds else []
    return shown + [f"--only {part}" for part in args.only or ()]


def _write_json(run: RunRecord, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "plan": dataclasses.asdict(run.plan),
        "machine": dataclasses.asdict(run.machine),
        "started_at": run.started_at.isoformat(),
        "duration_s": run.duration_s,
        "load_start": run.load_start,
        "load_end": run.load_end,
        "receiver": run.receiver.as_dict(),
        "processor": run.processor.as_dict(),
        "lag": [dataclasses.asdict(lag) for lag in run.lag],
        "memory": dataclasses.asdict(run.memory) if run.memory else None,
        "recovery": dataclasses.asdict(run.recovery) if run.recovery else None,
        "redis_memory": dataclasses.asdict(run.redis_memory) if run.redis_memory else None,
        "console": dataclasses.asdict(run.console) if run.console else None,
    }
    path.write_text(json.dumps(data, indent=2, default=str))
