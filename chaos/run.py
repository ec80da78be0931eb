"""The chaos run: a nemesis against the real stack while a WorkOS-like sender keeps the load going.

Nemesis
-------
The stack runs as production runs it (chaos/stack.py): Redis with AOF, the receiver under uvicorn, the worker
supervisor with a dedicated ingester and two worker processes, all on loopback; the handlers write every call to a
ledger in a Redis of their own. The sender (chaos/sender.py) signs each delivery attempt, sends ordinary events
out of order, duplicated and sometimes again with a changed body (another data.id and state), and retries any
non-200 with backoff. Meanwhile the nemesis (chaos/nemesis.py) applies, one after another, each waiting for its
effect with a deadline:

- future: a few events, one of them created in 2099, on keys of their own;
- hang: `chaos.fragile` sleeps far past its `timeout=` on a few chosen keys (HandlerTimeout dead letters, abandoned
  threads, a worker restarting itself);
- kill: `chaos.fragile` SIGKILLs its own worker on one chosen key, on every attempt (WorkerLost dead letters);
- stop-worker: SIGSTOP of a worker inside handler calls for two leases, then SIGCONT;
- kill-ingester, restart-receiver, restart-redis (the full run): the older crash faults;
- stop-redis: SIGSTOP of Redis for longer than the recovery timeout, then SIGCONT (the receiver must answer 503).

Then the run drains, and chaos/verdict.py judges the ledger, the sender's answers, the dead letters, the processor's
metrics and its logs: nothing lost, nothing completed twice unless the later call had a higher attempt, no stale
call started, nothing misordered unless flagged late, no dead letter but the chosen keys' (as HandlerTimeout and
WorkerLost), changed-body redeliveries never run, the far-future event ordered by its receipt with no later event
late, and other keys' delivery lag while keys hung and killed within the recovery timeout. Exit status 1 on FAIL.

`make chaos` runs the full size (a few thousand events, about two minutes); tests/test_chaos_smoke.py the smoke
size in `make test`. Everything is seeded (`--seed`); the processes' timing is not, so figures vary a little.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
import time
from pathlib import Path

import orjson
import redis

from chaos.figures import Evidence
from chaos.handlers import HANDLERS
from chaos.ledger import LedgerReader
from chaos.nemesis import ORDER, Fault, Nemesis
from chaos.plan import SIZES, Plan
from chaos.report import render
from chaos.sender import Outcome, Sender, issue_load
from chaos.stack import Stack
from chaos.verdict import judge
from chaos.workload import KILLER_KEY, Workload, hung_keys
from processor.deadletters import list_letters
from processor.stats import read_snapshot

__all__ = ["main"]

#: After the nemesis ends, deliveries still planned (late copies, retries) get this long to be answered 200.
_SEND_GRACE_S = 60.0
#: No delivery retries past this, whatever happens.
_SEND_CAP_S = 900.0
_DRAIN_POLL_S = 0.5


async def drive(plan: Plan, stack: Stack, workload: Workload, outcome: Outcome, ledger: LedgerReader,
                system: redis.Redis) -> list[Fault]:  # fmt: skip
    """Run the load and the nemesis together; return once every delivery was answered 200 or given up."""
    sender = Sender(stack.url, outcome, seed=plan.seed, give_up_at=time.monotonic() + _SEND_CAP_S)
    stop = asyncio.Event()
    load = asyncio.create_task(issue_load(workload, sender, stop))
    try:
        return await Nemesis(stack, plan, workload, sender, outcome, ledger, system).run()
    finally:
        stop.set()
        await load
        sender.give_up_at = min(sender.give_up_at, time.monotonic() + _SEND_GRACE_S)
        await sender.join()
        await sender.close()


def drain(plan: Plan, ledger: LedgerReader, system: redis.Redis, accepted: set[str]) -> bool:
    """Wait until Redis holds no pending work and every accepted event was completed or dead-lettered."""
    deadline = time.monotonic() + plan.drain_timeout_s
    while time.monotonic() < deadline:
        ledger.refresh()
        snapshot = read_snapshot(system, int(time.time() * 1000))
        pending = sum(b.pending for b in snapshot.handlers.values())
        if snapshot.inbox == 0 and pending == 0:
            dead = {(letter.handler, letter.event_id) for letter in list_letters(system, "dead")}
            done = {(c.handler, c.event_id) for c in ledger.ends} | dead
            if all((h, e) in done for h in HANDLERS for e in accepted):
                return True
        time.sleep(_DRAIN_POLL_S)  # polling interval while the workers drain
    return False


def handler_env(plan: Plan) -> dict[str, str]:
    return {
        "CHAOS_WORK_MS": "20",
        "CHAOS_TIMEOUT_S": str(plan.handler_timeout_s),
        "CHAOS_HANG_S": str(plan.hang_s),
        "CHAOS_HUNG_KEYS": ",".join(hung_keys(plan)),
        "CHAOS_KILLER_KEYS": KILLER_KEY,
    }


def run(plan: Plan, workdir: Path) -> int:
    # A kept workdir (`--workdir`) may hold an earlier run's servers' files: a fresh run starts from none, or the
    # old ledger would count the earlier run's calls as this one's.
    for leftover in ("redis", "ledger", "cluster"):
        shutil.rmtree(workdir / leftover, ignore_errors=True)
    (workdir / "stack.log").unlink(missing_ok=True)
    stack = Stack(workdir, plan, handler_env=handler_env(plan))
    started = time.monotonic()
    outcome = Outcome()
    try:
        stack.start()
        ledger = LedgerReader(redis.Redis.from_url(stack.ledger.url))
        system = stack.system()
        workload = Workload(plan, t0_ms=int(time.time() * 1000), t0=time.monotonic())
        faults = asyncio.run(drive(plan, stack, workload, outcome, ledger, system))
        drained = drain(plan, ledger, system, set(outcome.accepted_at))
        ledger.refresh()
        letters = list_letters(system, "dead")
        metrics = stack.metrics()
        ledger.client.close()
        system.close()
    finally:
        stack.stop()
    evidence = Evidence(
        plan, workload, outcome, faults, ledger.starts, ledger.ends, letters, metrics, stack.log_lines(), drained
    )
    verdict = judge(evidence)
    report = render(verdict, plan, faults, time.monotonic() - started)
    (workdir / "report.md").write_text(report + "\n")
    # For a post-mortem beside the Redis files and the stack's log (`--workdir`): what the sender saw.
    (workdir / "accepted.json").write_bytes(orjson.dumps(outcome.accepted_at))
    print(report, flush=True)
    return 0 if verdict.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full", help="full (make chaos) or smoke (make test)")
    parser.add_argument("--seed", type=int, help="seed of the load and the chosen keys")
    parser.add_argument("--rate", type=float, help="ordinary events issued per second")
    parser.add_argument("--faults", help=f"comma-separated, from: {', '.join(ORDER)} (default: the size's)")
    parser.add_argument("--workdir", type=Path, help="keep Redis files and the stack's log here")
    parser.add_argument("--store", choices=("server", "cluster"), default="server",
                        help="the state store: one Redis, or a Redis Cluster (3 primaries + 3 replicas)")  # fmt: skip
    parser.add_argument("--min-replicas", type=int, default=0, help="HOOKYARD_MIN_REPLICAS of a cluster run")
    args = parser.parse_args(argv)
    faults = None
    if args.faults is not None:
        faults = tuple(f for f in args.faults.split(",") if f)
        unknown = sorted(set(faults) - set(ORDER))
        if unknown:
            parser.error(f"unknown faults: {', '.join(unknown)}")
    plan = SIZES[args.size]
    if args.store == "cluster":
        plan = plan.on_cluster(args.min_replicas)
    plan = plan.with_options(seed=args.seed, rate=args.rate, faults=faults)
    with contextlib.ExitStack() as cleanup:
        workdir = args.workdir or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="hookyard-chaos-")))
        workdir.mkdir(parents=True, exist_ok=True)
        return run(plan, workdir)
