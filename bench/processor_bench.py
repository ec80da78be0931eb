"""Processor throughput: a backlog of accepted events drained by Hookyard's workers vs raw Dramatiq's.

Every run starts from an empty Redis, fills the queue first (Hookyard: the inbox, byte for byte what the
receiver appends; raw Dramatiq: what `actor.send` stores), then starts the workers — 2 processes x 8 threads
for both — and polls the handlers' counter until every call is done. The rate is taken from the first completed
call to the last, so process start-up (imports, forks) is left out for both.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import redis

from bench.deliveries import inbox_messages, now_ms
from bench.dramatiq_fill import DONE, prefill
from bench.plan import Plan
from bench.processes import PYTHON, ROOT, Service, cpu_seconds, tree_cpu_seconds
from bench.stats import Measurements
from shared import keys

__all__ = [
    "ROUND_VARIANTS",
    "WINDOW_VARIANT",
    "ProcessorBench",
    "Variant",
    "check_handlers",
    "hookyard_env",
    "processor_service",
]

THREADS = 8  # HOOKYARD_WORKER_THREADS' default, and what raw Dramatiq is given
ISOLATION = Path(__file__).resolve().parent / "isolation"
_POLL_S = 0.01


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    label: str
    raw: bool = False  # raw Dramatiq instead of Hookyard
    handlers: int = 1  # Hookyard handlers, or raw Dramatiq actors each event is sent to
    order_by: str = "resource"
    duplicates: bool = False
    window: str | None = "0"  # HOOKYARD_REORDER_WINDOW; None: the default (5 s)
    reference: str | None = None  # the raw variant its ratio is taken against
    small: bool = False  # drains plan.variant_events events instead of plan.events (the time budget)


RAW_1 = Variant("raw-dramatiq", "raw Dramatiq, 1 no-op actor", raw=True)
RAW_N = Variant("raw-dramatiq-5", "raw Dramatiq, 5 no-op actors (5 messages per event)", raw=True, handlers=5,
                small=True)  # fmt: skip
ROUND_VARIANTS: tuple[Variant, ...] = (
    RAW_1,
    Variant("hookyard", "Hookyard, 1 handler, order_by=resource (dedupe + ordering on)", reference=RAW_1.name),
    Variant(
        "hookyard-unordered", 'Hookyard, 1 handler, order_by="none"', order_by="none", reference=RAW_1.name, small=True
    ),
    Variant(
        "hookyard-duplicates",
        "Hookyard, 1 handler, +30 % duplicate deliveries",
        duplicates=True,
        reference=RAW_1.name,
        small=True,
    ),
    RAW_N,
    Variant("hookyard-5", "Hookyard, 5 handlers, order_by=resource", handlers=5, reference=RAW_N.name, small=True),
)
WINDOW_VARIANT = Variant("hookyard-window", "Hookyard, 1 handler, default 5 s reorder window", window=None,
                         small=True)  # fmt: skip


class DrainFailed(RuntimeError):
    """The workers did not finish the backlog in time (or died)."""


@dataclass(frozen=True, slots=True)
class Drain:
    events_per_s: float
    calls: int
    seconds: float
    extra_calls: int  # calls beyond one per (event, handler): re-runs
    cpu_ms_per_event: float  # workers + Redis, over the same window as the rate: robust to noisy neighbours


class ProcessorBench:
    def __init__(
        self, plan: Plan, workdir: Path, redis_url: str, redis_pid: int, *, measurements: Measurements
    ) -> None:
        self.plan = plan
        self.workdir = workdir
        self.redis_url = redis_url
        self.redis_pid = redis_pid
        self.measurements = measurements
        self.client = redis.Redis.from_url(redis_url)
        received = now_ms()
        self.messages = list(inbox_messages(plan.events, resources=plan.resources, received_ms=received))
        self.duplicated = list(
            inbox_messages(
                plan.variant_events,
                resources=plan.resources,
                duplicate_share=plan.duplicate_share,
                received_ms=received,
            )
        )
        self.events = [orjson.loads(m.partition(b"\n")[2]) for m in self.messages]
        self.commands: dict[str, str] = {}
        self.failures: list[str] = []

    @property
    def duplicate_deliveries(self) -> int:
        return len(self.duplicated) - self.plan.variant_events

    def size(self, variant: Variant) -> int:
        return self.plan.variant_events if variant.small else self.plan.events

    def run(self, variant: Variant, round_index: int) -> Drain:
        self.client.flushall()
        service = self._fill_raw(variant) if variant.raw else self._fill_hookyard(variant)
        self.commands.setdefault(variant.name, service.command)
        try:
            service.start()
            drain = self._wait(self.size(variant), variant.handlers, service)
        except DrainFailed as exc:
            # One broken run is reported (as no number) without throwing away the rest of the benchmark.
            self.failures.append(str(exc))
            drain = Drain(math.nan, 0, math.nan, 0, math.nan)
        finally:
            service.stop(graceful=False)
        if not variant.raw:
            check_handlers(service.log_path, variant.handlers)
        self.measurements.add(
            variant.name,
            round_index,
            events_per_s=drain.events_per_s,
            seconds=drain.seconds,
            extra_calls=drain.extra_calls,
            cpu_ms_per_event=drain.cpu_ms_per_event,
        )
        return drain

    def close(self) -> None:
        self.client.close()

    # --- filling ----------------------------------------------------------------------------------------------

    def _fill_hookyard(self, variant: Variant) -> Service:
        messages = self.duplicated if variant.duplicates else self.messages[: self.size(variant)]
        if variant.window is None:
            # A backlog received just now, so the hold-back window really holds it back.
            messages = list(inbox_messages(self.size(variant), resources=self.plan.resources, received_ms=now_ms()))
        self._rpush(messages)
        env = hookyard_env(self.redis_url, workers=self.plan.workers, handlers=variant.handlers,
                           order_by=variant.order_by, window=variant.window)  # fmt: skip
        return processor_service(variant.name, env, self.workdir)

    def _fill_raw(self, variant: Variant) -> Service:
        prefill(self.redis_url, self.events[: self.size(variant)], variant.handlers)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BENCH_REDIS_URL": self.redis_url}
        argv = [PYTHON, "-m", "dramatiq", "bench.raw_dramatiq", "--processes", str(self.plan.workers),
                "--threads", str(THREADS)]  # fmt: skip
        return Service(variant.name, argv, env, self.workdir / f"{variant.name}.log")

    def _rpush(self, messages: Sequence[bytes]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for start in range(0, len(messages), 1000):
            pipe.rpush(keys.INBOX, *messages[start : start + 1000])
        pipe.execute()

    # --- waiting ----------------------------------------------------------------------------------------------

    def _cpu(self, service: Service) -> float:
        return tree_cpu_seconds(service.pid) + cpu_seconds(self.redis_pid)

    def _wait(self, events: int, handlers: int, service: Service) -> Drain:
        expected = events * handlers
        deadline = time.monotonic() + self.plan.drain_timeout_s
        first_at: float | None = None
        first_count = 0
        first_cpu = 0.0
        while True:
            count = int(self.client.get(DONE) or 0)
            now = time.perf_counter()
            if count and first_at is None:
                first_at, first_count, first_cpu = now, count, self._cpu(service)
            if count >= expected:
                break
            if time.monotonic() > deadline or not service.running():
                error = service.last_error()
                raise DrainFailed(f"{service.name}: {count} of {expected} calls done; last error: {error}")
            time.sleep(_POLL_S)  # polling interval of the drain
        cpu = self._cpu(service) - first_cpu
        assert first_at is not None
        seconds = now - first_at
        done = (count - first_count) / handlers  # events whose every call completed in the window
        return Drain(
            events_per_s=done / seconds if seconds > 0 else math.nan,
            calls=count,
            seconds=seconds,
            extra_calls=count - expected,
            cpu_ms_per_event=cpu * 1000 / done if done else math.nan,
        )


#: Settings the report shows in front of each processor command (REDIS_URL and PYTHONPATH are set too).
SHOWN_ENV = (
    "HOOKYARD_WORKERS",
    "HOOKYARD_HANDLERS",
    "HOOKYARD_REORDER_WINDOW",
    "HOOKYARD_RECOVERY_TIMEOUT",
    "HOOKYARD_WORKER_METRICS_PORT",
    "HOOKYARD_LOG_FORMAT",
    "BENCH_HANDLERS",
    "BENCH_ORDER_BY",
    "BENCH_MODE",
    "BENCH_WORK_MS",
)


def processor_service(name: str, env: dict[str, str], workdir: Path) -> Service:
    """`python -m processor` (the worker supervisor) as the bench runs it, logging to `<workdir>/<name>.log`."""
    return Service(name, [PYTHON, "-m", "processor"], env, workdir / f"{name}.log", shown_env=SHOWN_ENV)


def check_handlers(log_path: Path, count: int) -> None:
    """Fail unless the supervisor logged that it runs exactly the bench's `count` handlers."""
    expected = sorted(f"bench.noop.{i}" for i in range(count))
    for line in log_path.read_bytes().splitlines():
        if b"processor.starting" in line:
            record = orjson.loads(line)
            if record.get("event") == "processor.starting":
                if sorted(record.get("handlers", [])) != expected:
                    raise RuntimeError(f"the workers ran handlers {record.get('handlers')}, expected {expected}")
                return
    raise RuntimeError(f"no processor.starting line in {log_path}")


def hookyard_env(
    redis_url: str,
    *,
    workers: int,
    handlers: int = 1,
    order_by: str = "resource",
    window: str | None = "0",
    mode: str = "count",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The worker supervisor's environment, as deployed except for the bench handlers and the knobs named."""
    env = {
        **os.environ,
        # isolation/ first: its sitecustomize hides handler plugins installed in the environment.
        "PYTHONPATH": os.pathsep.join((str(ISOLATION), str(ROOT))),
        "REDIS_URL": redis_url,
        "HOOKYARD_HANDLERS": "bench.handlers",
        "HOOKYARD_WORKERS": str(workers),
        "HOOKYARD_WORKER_METRICS_PORT": "0",
        "HOOKYARD_LOG_FORMAT": "json",
        "BENCH_HANDLERS": str(handlers),
        "BENCH_ORDER_BY": order_by,
        "BENCH_MODE": mode,
        **(extra or {}),
    }
    if window is not None:
        env["HOOKYARD_REORDER_WINDOW"] = window
    else:
        env.pop("HOOKYARD_REORDER_WINDOW", None)
    return env
