"""The chaos run: the real stack as production runs it, a sender that behaves like WorkOS, and kills.

Starts Redis (AOF on), the receiver under uvicorn and the worker supervisor with two worker processes; a
second Redis holds the handlers' ledger, out of harm's way. The sender signs every delivery attempt, sends
concurrently and out of order (within and beyond the reorder window), duplicates 30 % of events and retries
any non-200 with backoff. Meanwhile: SIGKILL a worker, restart Redis, restart the receiver (SIGTERM), SIGKILL
a worker again. At the end the ledger is checked: nothing lost, nothing handled twice outside the documented
window (a higher `event.attempt` after a crash), no per-key order violation.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import redis

from chaos.handlers import IN_FLIGHT, LEDGER
from shared.embedded_redis import EmbeddedRedis, free_port
from shared.signature import sign

__all__ = ["main"]

ROOT = Path(__file__).resolve().parents[1]
SECRET = "chaos_secret_0123456789"  # noqa: S105 - the run signs with its own throwaway secret
HANDLERS = ("chaos.ordered", "chaos.unordered")


@dataclass(frozen=True)
class Plan:
    events: int
    resources: int
    duplicate_share: float
    rate: float
    seed: int
    window_s: float
    drain_timeout_s: float
    actions: tuple[str, ...]


@dataclass(frozen=True)
class Delivery:
    at_s: float
    event_id: str
    body: bytes


@dataclass
class Outcome:
    first_sent: dict[str, float] = field(default_factory=dict)
    accepted: set[str] = field(default_factory=set)
    attempts: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    gave_up: int = 0


@dataclass
class Recovery:
    action: str
    at: float
    in_flight: list[str]
    seconds: float | None = None


def build_deliveries(plan: Plan) -> tuple[list[Delivery], dict[str, tuple[int, str, str]]]:
    """Events in issued order, then deliveries displaced in time (and duplicated) like a retrying sender's."""
    rng = random.Random(plan.seed)
    start_ms = int(time.time() * 1000)
    spacing = 1.0 / plan.rate
    events: dict[str, tuple[int, str, str]] = {}  # id -> (issued ms, id, resource)
    deliveries: list[Delivery] = []
    for i in range(plan.events):
        eid = f"event_{plan.seed:04d}{i:07d}"
        resource = f"directory_user_{rng.randrange(plan.resources):04d}"
        issued_ms = start_ms + int(i * spacing * 1000)
        created = datetime.fromtimestamp(issued_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        body = orjson.dumps(
            {
                "id": eid,
                "event": rng.choice(("dsync.user.updated", "dsync.user.created", "dsync.user.updated")),
                "data": {"id": resource, "directory_id": "directory_01", "state": rng.choice(("active", "inactive"))},
                "created_at": created + "Z",
                "object": "event",
            }
        )
        events[eid] = (issued_ms, eid, resource)
        copies = 1 if rng.random() >= plan.duplicate_share else rng.choice((2, 3))
        for copy in range(copies):
            roll = rng.random()
            if roll < 0.6:
                shift = 0.0
            elif roll < 0.9:
                shift = rng.uniform(0, plan.window_s)  # overtaken within the window: put back in order
            else:
                shift = rng.uniform(plan.window_s, 4 * plan.window_s)  # beyond it: delivered late
            if copy:
                shift += rng.uniform(0, 10)
            deliveries.append(Delivery(i * spacing + shift, eid, body))
    deliveries.sort(key=lambda d: d.at_s)
    return deliveries, events


class Stack:
    """Redis, receiver and workers as production runs them, plus a ledger Redis."""

    def __init__(self, workdir: Path, window_s: float) -> None:
        self.redis = EmbeddedRedis(workdir / "redis")
        self.ledger = EmbeddedRedis(workdir / "ledger")
        self.port = free_port()
        self.window_s = window_s
        self.receiver: subprocess.Popen[bytes] | None = None
        self.processor: subprocess.Popen[bytes] | None = None
        self.log = (workdir / "stack.log").open("ab")

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "REDIS_URL": self.redis.url,
            "CHAOS_LEDGER_URL": self.ledger.url,
            "WORKOS_WEBHOOK_SECRET": SECRET,
            "HOOKYARD_PORT": str(self.port),
            "HOOKYARD_HANDLERS": "chaos.handlers",
            "HOOKYARD_WORKERS": "2",
            "HOOKYARD_REORDER_WINDOW": f"{self.window_s}s",
            "HOOKYARD_WORKER_METRICS_PORT": "0",
            "HOOKYARD_LOG_FORMAT": "json",
            "HOOKYARD_LOG_LEVEL": "warning",
            "HOOKYARD_ENTRY_POINTS": "false",
            "PYTHONPATH": str(ROOT),
        }

    def start(self) -> None:
        self.redis.start()
        self.ledger.start()
        self.start_receiver()
        self.processor = subprocess.Popen(
            [sys.executable, "-m", "processor"], env=self.env(), cwd=ROOT, stdout=self.log, stderr=self.log
        )

    def start_receiver(self) -> None:
        self.receiver = subprocess.Popen(
            [sys.executable, "-m", "receiver"], env=self.env(), cwd=ROOT, stdout=self.log, stderr=self.log
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)  # polling interval while the receiver starts
        raise RuntimeError("receiver did not start; see stack.log")

    def restart_receiver(self) -> None:
        assert self.receiver is not None
        self.receiver.send_signal(signal.SIGTERM)
        self.receiver.wait(timeout=30)
        self.start_receiver()

    def worker_pids(self) -> list[int]:
        assert self.processor is not None
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.processor.pid:
                children.append(int(stat.parent.name))
        return sorted(children)

    def stop(self) -> None:
        for proc in (self.receiver, self.processor):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (self.receiver, self.processor):
            if proc is not None:
                try:
                    proc.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    proc.kill()
        self.redis.stop()
        self.ledger.stop()
        self.log.close()


async def send_all(url: str, deliveries: list[Delivery], outcome: Outcome, give_up_s: float) -> None:
    limits = httpx.Limits(max_connections=48, max_keepalive_connections=48)
    gate = asyncio.Semaphore(48)
    started = time.monotonic()
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def deliver(d: Delivery) -> None:
            backoff = 0.05
            async with gate:
                while True:
                    outcome.first_sent.setdefault(d.event_id, time.time())
                    outcome.attempts += 1
                    header = sign(d.body, SECRET.encode(), int(time.time() * 1000))
                    try:
                        r = await client.post(url, content=d.body, headers={"WorkOS-Signature": header})
                        status = str(r.status_code)
                    except httpx.TransportError as exc:
                        status = type(exc).__name__
                    outcome.statuses[status] = outcome.statuses.get(status, 0) + 1
                    if status == "200":
                        outcome.accepted.add(d.event_id)
                        return
                    if time.monotonic() - started > give_up_s:
                        outcome.gave_up += 1
                        return
                    # Like WorkOS: retry any non-200, with exponential backoff.
                    await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                    backoff = min(backoff * 2, 2.0)

        tasks = []
        for d in deliveries:
            delay = started + d.at_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(deliver(d)))
        await asyncio.gather(*tasks)


async def run_actions(stack: Stack, plan: Plan, span_s: float, ledger: redis.Redis) -> list[Recovery]:
    recoveries: list[Recovery] = []
    n = len(plan.actions)
    for i, action in enumerate(plan.actions):
        await asyncio.sleep(span_s / (n + 1))
        at = time.time()
        if action == "kill-worker":
            pids = stack.worker_pids()  # the supervisor's children: the workers and the ingester
            if not pids:
                continue
            victim = pids[i % len(pids)]
            role = "ingester" if b"--ingester" in Path(f"/proc/{victim}/cmdline").read_bytes() else "worker"
            in_flight = [str(k) for k, v in ledger.hgetall(IN_FLIGHT).items() if int(v) == victim]
            os.kill(victim, signal.SIGKILL)
            recoveries.append(Recovery(f"SIGKILL {role} {victim}", at, in_flight))
        elif action == "restart-redis":
            await asyncio.to_thread(stack.redis.restart)
            recoveries.append(Recovery("restart Redis (SIGTERM)", at, []))
        elif action == "restart-receiver":
            await asyncio.to_thread(stack.restart_receiver)
            recoveries.append(Recovery("restart receiver (SIGTERM)", at, []))
    return recoveries


def read_ledger(ledger: redis.Redis) -> list[tuple[str, str, int, bool, int, float]]:
    rows = []
    for line in ledger.lrange(LEDGER, 0, -1):
        name, eid, attempt, late, pid, ns = str(line).split("|")
        rows.append((name, eid, int(attempt), late == "1", int(pid), int(ns) / 1e9))
    return rows


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def analyse(
    rows: list[tuple[str, str, int, bool, int, float]],
    events: dict[str, tuple[int, str, str]],
    outcome: Outcome,
    recoveries: list[Recovery],
    dead: int,
) -> dict[str, object]:
    report: dict[str, object] = {
        "events": len(events),
        "deliveries_sent": outcome.attempts,
        "accepted": len(outcome.accepted),
        "gave_up": outcome.gave_up,
        "dead_letters": dead,
    }
    lost = doubled = misordered = late = reruns = 0
    lags: list[float] = []
    done_at: dict[tuple[str, str], float] = {}
    for name in HANDLERS:
        mine = [r for r in rows if r[0] == name]
        attempts: dict[str, list[int]] = {}
        for _, eid, attempt, _, _, at in mine:
            attempts.setdefault(eid, []).append(attempt)
            if (name, eid) not in done_at:
                done_at[(name, eid)] = at
                lags.append(at - outcome.first_sent.get(eid, at))
        handled = set(attempts)
        report[f"handled[{name}]"] = len(handled)
        lost += len(outcome.accepted - handled)
        for seen in attempts.values():
            if len(seen) > 1:
                if seen == sorted(set(seen)):
                    reruns += len(seen) - 1  # the documented window: a later attempt after a crash
                else:
                    doubled += 1
        if name == "chaos.ordered":
            last: dict[str, tuple[int, str]] = {}
            for _, eid, _, is_late, _, _ in mine:
                issued, _, resource = events[eid]
                if is_late:
                    late += 1
                    continue
                if resource in last and (issued, eid) < last[resource]:
                    misordered += 1
                last[resource] = max(last.get(resource, (0, "")), (issued, eid))
    for rec in recoveries:
        finished = [done_at.get(tuple(m.split("|", 1))) for m in rec.in_flight]  # type: ignore[arg-type]
        known = [f for f in finished if f is not None]
        rec.seconds = max(known) - rec.at if known else None
    report.update(
        lost=lost,
        doubled=doubled,
        misordered=misordered,
        late=late,
        reruns_in_window=reruns,
        lag_max_s=round(max(lags, default=0.0), 2),
        lag_p99_s=round(percentile(lags, 0.99), 2),
        lag_p50_s=round(percentile(lags, 0.50), 2),
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--resources", type=int, default=200)
    parser.add_argument("--duplicates", type=float, default=0.3, help="share of events delivered 2-3 times")
    parser.add_argument("--rate", type=float, default=150.0, help="events issued per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--window", type=float, default=5.0, help="HOOKYARD_REORDER_WINDOW in seconds")
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument(
        "--actions",
        default="kill-worker,restart-redis,restart-receiver,kill-worker",
        help="comma-separated: kill-worker, restart-redis, restart-receiver (spread over the sending time)",
    )
    args = parser.parse_args(argv)
    plan = Plan(
        args.events, args.resources, args.duplicates, args.rate, args.seed, args.window, args.drain_timeout,
        tuple(a for a in args.actions.split(",") if a),
    )  # fmt: skip
    random.seed(plan.seed)
    deliveries, events = build_deliveries(plan)
    span_s = deliveries[-1].at_s if deliveries else 0.0
    with tempfile.TemporaryDirectory(prefix="hookyard-chaos-") as tmp:
        stack = Stack(Path(tmp), plan.window_s)
        started = time.monotonic()
        try:
            stack.start()
            ledger = redis.Redis.from_url(stack.ledger.url, decode_responses=True)
            outcome = Outcome()

            async def run() -> list[Recovery]:
                url = f"http://127.0.0.1:{stack.port}/webhooks/workos"
                sending = asyncio.create_task(send_all(url, deliveries, outcome, span_s + 120))
                # Spread the actions over the time events are issued (+ one window), when handlers are busy.
                recoveries = await run_actions(stack, plan, plan.events / plan.rate + plan.window_s, ledger)
                await sending
                return recoveries

            recoveries = asyncio.run(run())
            deadline = time.monotonic() + plan.drain_timeout_s
            while time.monotonic() < deadline:
                rows = read_ledger(ledger)
                handled = {(r[0], r[1]) for r in rows}
                if all((h, e) in handled for h in HANDLERS for e in outcome.accepted):
                    break
                time.sleep(0.5)  # polling interval while the workers drain
            rows = read_ledger(ledger)
            from processor.deadletters import list_letters

            system = redis.Redis.from_url(stack.redis.url)
            dead = len(list_letters(system, "dead"))
            system.close()
            report = analyse(rows, events, outcome, recoveries, dead)
            ledger.close()
        finally:
            stack.stop()
        elapsed = time.monotonic() - started
        log_tail = (Path(tmp) / "stack.log").read_bytes()[-4000:].decode(errors="replace")
    ok = report["lost"] == 0 and report["doubled"] == 0 and report["misordered"] == 0 and report["gave_up"] == 0
    print(
        f"chaos: {'PASS' if ok else 'FAIL'} seed={plan.seed} events={report['events']} accepted={report['accepted']} "
        f"lost={report['lost']} doubled={report['doubled']} misordered={report['misordered']} "
        f"late={report['late']} dead={report['dead_letters']} elapsed={elapsed:.0f}s"
    )
    print()
    print("| measure | value |")
    print("|---|---|")
    for key, value in report.items():
        print(f"| {key} | {value} |")
    print(f"| statuses | {dict(sorted(outcome.statuses.items()))} |")
    for rec in recoveries:
        shown = "nothing in flight" if rec.seconds is None else f"{rec.seconds:.1f} s ({len(rec.in_flight)} in flight)"
        print(f"| recovery after {rec.action} | {shown} |")
    if not ok:
        print("\nlast lines of the stack's log:\n" + log_tail, file=sys.stderr)
    return 0 if ok else 1
