"""The stack under test, as production runs it: Redis (AOF on), the receiver under uvicorn, and the worker
supervisor (`python -m processor`: a dedicated ingester and two worker processes); plus a second Redis for the
handlers' ledger, out of harm's way. Everything listens on loopback only."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
from prometheus_client.parser import text_string_to_metric_families

from chaos.plan import Plan
from processor.devtools.embedded_cluster import EmbeddedCluster
from processor.devtools.embedded_redis import EmbeddedRedis, free_port
from processor.stats import read_snapshot
from shared import keys
from shared.redis_clients import ClientPolicy, redis_client

__all__ = ["SECRET", "Stack"]

ROOT = Path(__file__).resolve().parents[1]
SECRET = "chaos_secret_0123456789"  # noqa: S105 - the run signs with its own throwaway secret
_START_TIMEOUT_S = 30.0
_WORKERS = 2
_SYSTEM = ClientPolicy(name="chaos", socket_timeout_s=5.0, connect_timeout_s=2.0)


class Stack:
    """Redis, receiver and workers, plus a ledger Redis; `workdir` keeps their files and the combined log."""

    def __init__(self, workdir: Path, plan: Plan, *, handler_env: dict[str, str]) -> None:
        self.redis = EmbeddedRedis(workdir / "redis")  # the store; on a cluster run, the wake-up broker
        self.cluster = EmbeddedCluster(workdir / "cluster") if plan.store == "cluster" else None
        self.ledger = EmbeddedRedis(workdir / "ledger")
        self.port = free_port()
        self.metrics_port = free_port()
        self.plan = plan
        self.handler_env = handler_env
        self.receiver: subprocess.Popen[bytes] | None = None
        self.processor: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "stack.log"
        self.log = self.log_path.open("ab")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhooks/workos"

    @property
    def store_url(self) -> str:
        return self.cluster.url if self.cluster is not None else self.redis.url

    def system(self) -> redis.Redis:
        """A client of the state store (one server or the cluster) for the run's own reads."""
        return redis_client(self.store_url, _SYSTEM)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.handler_env,
            "REDIS_URL": self.store_url,
            "HOOKYARD_BROKER_URL": self.redis.url,
            "HOOKYARD_MIN_REPLICAS": str(self.plan.min_replicas),
            "HOOKYARD_INBOX_SHARDS": str(self.plan.inbox_shards),
            "CHAOS_LEDGER_URL": self.ledger.url,
            "WORKOS_WEBHOOK_SECRET": SECRET,
            "HOOKYARD_HOST": "127.0.0.1",
            "HOOKYARD_PORT": str(self.port),
            "HOOKYARD_HANDLERS": "chaos.handlers",
            "HOOKYARD_WORKERS": str(_WORKERS),
            "HOOKYARD_REORDER_WINDOW": f"{self.plan.window_s}s",
            "HOOKYARD_RECOVERY_TIMEOUT": f"{self.plan.recovery_timeout_s}s",
            "HOOKYARD_WORKER_METRICS_PORT": str(self.metrics_port),
            "HOOKYARD_LOG_FORMAT": "json",
            "HOOKYARD_LOG_LEVEL": "warning",
            "HOOKYARD_ENTRY_POINTS": "false",
            "PYTHONPATH": str(ROOT),
        }

    def start(self) -> None:
        self.redis.start()
        if self.cluster is not None:
            self.cluster.start()
        self.ledger.start()
        self.start_receiver()
        self.processor = subprocess.Popen(
            [sys.executable, "-m", "processor"], env=self.env(), cwd=ROOT, stdout=self.log, stderr=self.log
        )
        # Ready once both workers have swept (heartbeats) and the ingester holds the ingest lease: the first
        # events are then measured against a working stack, not against its start-up.
        system = self.system()
        try:
            self._wait_for(lambda: self._processor_ready(system), "the worker processes")
        finally:
            system.close()

    @staticmethod
    def _processor_ready(system: redis.Redis) -> bool:
        snapshot = read_snapshot(system, int(time.time() * 1000))
        return snapshot.workers_alive >= _WORKERS and bool(system.exists(keys.INBOX_LEASE))

    def start_receiver(self) -> None:
        self.receiver = subprocess.Popen(
            [sys.executable, "-m", "receiver"], env=self.env(), cwd=ROOT, stdout=self.log, stderr=self.log
        )
        self._wait_for(self._receiver_healthy, "the receiver")

    def _receiver_healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    @staticmethod
    def _wait_for(ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.05)  # polling interval while it starts
        raise RuntimeError(f"{what} did not start; see the stack log")

    def restart_receiver(self) -> None:
        assert self.receiver is not None
        self.receiver.send_signal(signal.SIGTERM)
        self.receiver.wait(timeout=30)
        self.start_receiver()

    def children(self) -> dict[int, str]:
        """The supervisor's children now: pid -> "ingester" or "worker"."""
        assert self.processor is not None
        found: dict[int, str] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                if parent != self.processor.pid:
                    continue
                cmdline = (stat.parent / "cmdline").read_bytes()
            except (OSError, ValueError, IndexError):
                continue  # exited meanwhile
            found[int(stat.parent.name)] = "ingester" if b"--ingester" in cmdline else "worker"
        return found

    def worker_pids(self) -> list[int]:
        return sorted(pid for pid, role in self.children().items() if role == "worker")

    def metrics(self) -> dict[str, float]:
        """The processor's Prometheus samples, as "name{label=value,...}" -> value."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
        return samples

    def log_lines(self) -> list[dict[str, Any]]:
        """The JSON lines of every process's log (anything else, such as a raw traceback, is left out)."""
        lines = []
        for raw in self.log_path.read_bytes().splitlines():
            if raw.startswith(b"{"):
                with contextlib.suppress(orjson.JSONDecodeError):
                    lines.append(orjson.loads(raw))
        return lines

    def stop(self) -> None:
        # Nothing stays paused: a stopped process would sit out its SIGTERM.
        paused = [self.redis.pid, *(self.children() if self.processor is not None else ())]
        for pid in paused:
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        for proc in (self.receiver, self.processor):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in (self.receiver, self.processor):
            if proc is not None:
                try:
                    proc.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.redis.stop()
        if self.cluster is not None:
            self.cluster.stop()
        self.ledger.stop()
        self.log.close()
