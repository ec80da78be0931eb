"""The HTTP ack path: ceiling, textbook and Hookyard's receiver under the same load, interleaved round by round.

Each server is one process pinned to core 0; the load generator, Redis and this process share core 1. Per
contender and round: a warm-up, a closed-loop saturation run (wrk, or the bundled generator without wrk),
then a fixed offered rate (open loop). Every run POSTs a freshly signed ≈1.2 KB dsync.user.created.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.deliveries import EVENT_TYPE, SECRET, Delivery, http_request, signed_delivery
from bench.open_loop import closed_loop, open_loop
from bench.plan import Plan
from bench.processes import PYTHON, ROOT, Service, cpu_seconds, wait_for_port
from bench.stats import Measurements
from bench.wrk import WrkResult, run_wrk, write_script, wrk_binary, wrk_command
from processor.devtools.embedded_redis import free_port
from processor.devtools.samples import sample_event
from shared.keys import INBOX, INBOX_WAKE

__all__ = ["CONTENDERS", "LOAD_CORE", "SERVER_CORE", "ReceiverBench"]

CEILING, TEXTBOOK, HOOKYARD = "ceiling", "textbook", "hookyard"
CONTENDERS = (CEILING, TEXTBOOK, HOOKYARD)
SERVER_CORE = 0
LOAD_CORE = 1


@dataclass(frozen=True, slots=True)
class Commands:
    """What the report shows as the exact commands of this part."""

    servers: dict[str, str]
    saturation: str
    fixed_rate: str


class ReceiverBench:
    """Owns the three servers for the length of the receiver part."""

    def __init__(self, plan: Plan, workdir: Path, redis_url: str, *, measurements: Measurements) -> None:
        self.plan = plan
        self.workdir = workdir
        self.redis_url = redis_url
        self.measurements = measurements
        self.client = redis.Redis.from_url(redis_url)
        self.servers: dict[str, Service] = {}
        self.ports: dict[str, int] = {}
        self.use_wrk = wrk_binary() is not None
        self.rng = random.Random(7)

    # --- servers ----------------------------------------------------------------------------------------------

    def _service(self, contender: str, port: int) -> Service:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        log = self.workdir / f"{contender}.log"
        cores = {SERVER_CORE}
        if contender == CEILING:
            argv = [PYTHON, "-m", "uvicorn", "bench.ceiling:app", "--host", "127.0.0.1", "--port", str(port),
                    "--loop", "uvloop", "--http", "httptools", "--no-access-log"]  # fmt: skip
        elif contender == TEXTBOOK:
            env |= {"BENCH_REDIS_URL": self.redis_url, "BENCH_WEBHOOK_SECRET": SECRET}
            argv = [PYTHON, "-m", "uvicorn", "bench.textbook:app", "--host", "127.0.0.1", "--port", str(port)]
        else:
            env |= {
                "REDIS_URL": self.redis_url,
                "WORKOS_WEBHOOK_SECRET": SECRET,
                "HOOKYARD_PORT": str(port),
                "HOOKYARD_LOG_FORMAT": "json",
            }
            env.pop("HOOKYARD_LOG_LEVEL", None)  # info, as deployed
            argv = [PYTHON, "-m", "receiver"]
        return Service(contender, argv, env, log, cores=cores, shown_env=("HOOKYARD_LOG_FORMAT",))

    @contextmanager
    def running(self) -> Iterator[None]:
        try:
            for contender in CONTENDERS:
                port = free_port()
                self.ports[contender] = port
                self.servers[contender] = self._service(contender, port).start()
            for contender, service in self.servers.items():
                wait_for_port(self.ports[contender], process=service.process)
            yield
        finally:
            for service in self.servers.values():
                service.stop()
            self.client.close()

    def commands(self) -> Commands:
        script = Path("<run dir>/<contender>.lua")
        saturation = wrk_command(script, 0, connections=self.plan.connections, duration_s=self.plan.saturation_s,
                                 cores=str(LOAD_CORE))  # fmt: skip
        shown = " ".join(saturation).replace("127.0.0.1:0", "127.0.0.1:<port>")
        if not self.use_wrk:
            shown = f"bundled closed-loop generator (bench/open_loop.py), {self.plan.connections} connections"
        return Commands(
            servers={name: service.command for name, service in self.servers.items()},
            saturation=shown,
            fixed_rate=(
                f"bench/open_loop.py on core {LOAD_CORE}: {self.plan.fixed_rate:g} req/s offered for "
                f"{self.plan.fixed_s:g} s over up to {self.plan.connections} keep-alive connections, "
                "latency from each request's due time"
            ),
        )

    # --- runs -------------------------------------------------------------------------------------------------

    def run(self, contender: str, round_index: int) -> float:
        """One contender's turn in a round: warm-up, saturation, fixed rate. Returns its saturation req/s."""
        port = self.ports[contender]
        pid = self.servers[contender].pid
        plan = self.plan
        self._empty_queues()
        # Signed now: valid for the 180 s tolerance, far longer than this contender's runs.
        delivery = signed_delivery(sample_event(EVENT_TYPE, rng=self.rng))
        script = write_script(delivery, self.workdir, contender)
        if plan.warmup_s:
            self._saturate(delivery, script, port, plan.warmup_s)
        self._empty_queues()
        cpu_before = cpu_seconds(pid)
        saturation = self._saturate(delivery, script, port, plan.saturation_s)
        cpu_used = cpu_seconds(pid) - cpu_before
        self._empty_queues()
        request = http_request(delivery, port)
        fixed = open_loop(port, lambda _: request, rate=plan.fixed_rate, duration_s=plan.fixed_s,
                          connections=plan.connections)  # fmt: skip
        self.measurements.add(
            contender,
            round_index,
            rps=saturation.requests_per_s,
            p50_ms=saturation.p50_ms,
            p99_ms=saturation.p99_ms,
            non_2xx=saturation.non_2xx + saturation.socket_errors,
            cpu_us_per_request=cpu_used / max(1, saturation.requests) * 1e6,
            fixed_p50_ms=fixed.latency_ms(0.50),
            fixed_p99_ms=fixed.latency_ms(0.99),
            fixed_non_2xx=fixed.non_2xx + fixed.errors + fixed.incomplete,
            fixed_rps=fixed.requests_per_s,
        )
        self._empty_queues()
        return saturation.requests_per_s

    def _saturate(self, delivery: Delivery, script: Path, port: int, duration_s: float) -> WrkResult:
        if self.use_wrk:
            return run_wrk(script, port, connections=self.plan.connections, duration_s=duration_s,
                           cores=str(LOAD_CORE))  # fmt: skip
        request = http_request(delivery, port)
        result = closed_loop(port, lambda _: request, duration_s=duration_s, connections=self.plan.connections)
        return WrkResult(
            requests_per_s=result.requests_per_s,
            p50_ms=result.latency_ms(0.5),
            p99_ms=result.latency_ms(0.99),
            requests=result.completed,
            non_2xx=result.non_2xx,
            socket_errors=result.errors + result.incomplete,
        )

    def _empty_queues(self) -> None:
        """Drop what the last run stored, so Redis memory stays flat from run to run."""
        doomed = [INBOX, INBOX_WAKE, *self.client.scan_iter(match="dramatiq:*", count=1000)]
        self.client.delete(*doomed)
