"""Crash recovery: SIGKILL a worker mid-handler and time until the events it was running are finished elsewhere.

Events arrive at a steady rate the workers keep up with (appended to the inbox as the receiver does), so what is
timed is recovery, not a wait behind a backlog. The bench handler (`markers` mode) marks each event in flight
with its worker's pid and works a little, so a kill always lands mid-handler; the killed worker's markers say
which events it held. Those finish only after their leases lapse (a third of HOOKYARD_RECOVERY_TIMEOUT) and a
sweep hands them to another worker. The supervisor restarts the killed worker; the next kill waits for it.
"""

from __future__ import annotations

import os
import signal
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from bench.deliveries import inbox_messages, now_ms
from bench.end_to_end import wait_for_workers
from bench.handlers import FINISHED, IN_FLIGHT
from bench.plan import Plan
from bench.processor_bench import check_handlers, hookyard_env, processor_service
from shared import keys

__all__ = ["FEED_RATE", "Recovery", "RecoveryBench"]

_TIMEOUT_S = 120.0
#: Events per second fed in while the kills happen: about a third of what 16 threads at 50 ms per event can do.
FEED_RATE = 100
_FEED_TICK_S = 0.05


@dataclass(frozen=True, slots=True)
class Recovery:
    seconds: list[float]  # one per kill
    in_flight: list[int]  # events the killed worker held, per kill

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)


class RecoveryBench:
    def __init__(self, plan: Plan, workdir: Path, redis_url: str) -> None:
        self.plan = plan
        self.workdir = workdir
        self.redis_url = redis_url
        self.command = ""

    def run(self) -> Recovery:
        client = redis.Redis.from_url(self.redis_url, decode_responses=True)
        client.flushall()
        extra = {"BENCH_WORK_MS": str(self.plan.recovery_work_ms)}
        if self.plan.recovery_timeout is not None:
            extra["HOOKYARD_RECOVERY_TIMEOUT"] = self.plan.recovery_timeout
        env = hookyard_env(self.redis_url, workers=self.plan.workers, mode="markers", extra=extra)
        service = processor_service("recovery-processor", env, self.workdir)
        self.command = service.command
        seconds: list[float] = []
        held: list[int] = []
        stop_feeding = threading.Event()
        feeder = threading.Thread(target=self._feed, args=(stop_feeding,), name="bench-feeder", daemon=True)
        try:
            service.start()
            feeder.start()
            for _ in range(self.plan.recoveries):
                workers = wait_for_workers(client, service, self.plan.workers).workers
                victim, markers = _busiest(client, workers)
                killed_at = time.time()
                os.kill(victim, signal.SIGKILL)
                seconds.append(_wait_finished(client, markers) - killed_at)
                held.append(len(markers))
        finally:
            stop_feeding.set()
            feeder.join()
            service.stop(graceful=False)
            client.close()
        check_handlers(service.log_path, 1)
        return Recovery(seconds, held)

    def _feed(self, stop: threading.Event) -> None:
        """Append FEED_RATE events a second to the inbox (and the wake hint), as the receiver would."""
        client = redis.Redis.from_url(self.redis_url)
        per_tick = max(1, round(FEED_RATE * _FEED_TICK_S))
        events = inbox_messages(FEED_RATE * 600, resources=self.plan.resources, received_ms=now_ms(), seed=3)
        try:
            while not stop.wait(_FEED_TICK_S):
                pipe = client.pipeline(transaction=True)
                pipe.rpush(keys.INBOX, *(next(events) for _ in range(per_tick)))
                pipe.rpush(keys.INBOX_WAKE, 1)
                pipe.ltrim(keys.INBOX_WAKE, -1, -1)
                pipe.execute()
        finally:
            client.close()


def _busiest(client: redis.Redis, workers: list[int]) -> tuple[int, list[str]]:
    """The worker with the most events in flight, and those events (waits until one has some)."""
    deadline = time.monotonic() + _TIMEOUT_S
    while time.monotonic() < deadline:
        by_pid: dict[int, list[str]] = {}
        for marker, pid in client.hgetall(IN_FLIGHT).items():
            if int(pid) in workers:
                by_pid.setdefault(int(pid), []).append(str(marker))
        if by_pid:
            victim = max(by_pid, key=lambda pid: len(by_pid[pid]))
            return victim, by_pid[victim]
        time.sleep(0.01)  # polling interval until handlers are busy
    raise RuntimeError("no worker had an event in flight")


def _wait_finished(client: redis.Redis, markers: list[str]) -> float:
    """Unix time at which the last of `markers` finished (on another worker)."""
    deadline = time.monotonic() + _TIMEOUT_S
    while time.monotonic() < deadline:
        finished = [ns for ns in client.hmget(FINISHED, markers) if ns is not None]
        if len(finished) == len(markers):
            return max(int(ns) for ns in finished) / 1e9
        time.sleep(0.05)  # polling interval while the leases lapse
    raise RuntimeError(f"the killed worker's {len(markers)} events did not finish within {_TIMEOUT_S} s")
