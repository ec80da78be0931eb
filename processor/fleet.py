"""`python -m processor`: the supervisor of the worker fleet. Checks that every handler imports, serves the
workers' merged Prometheus metrics, and keeps `HOOKYARD_WORKERS` worker processes, one dedicated ingester
process and, with `HOOKYARD_CONSOLE_PORT`, the web console running (restarting any that die)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from processor.handlers import default_registry
from processor.reconcile.collector import ReconcileCollector
from processor.startup import start_process
from processor.stats import BacklogCollector
from processor.supervisor import ChildSpec, Supervisor
from shared.clock import wall_ms
from shared.logging import get_logger
from shared.redis_clients import OPERATOR, redact_url, redis_client, unreachable

__all__ = ["EXIT_STORE_UNREACHABLE", "main"]

#: Exit status when Redis cannot be used at start (the message says why).
EXIT_STORE_UNREACHABLE = 4

log = get_logger("hookyard.processor")


def main() -> int:
    # Handlers are imported here once, so a broken module stops us now, not in a restart loop of children.
    settings = start_process()
    if isinstance(settings, int):
        return settings
    problem = unreachable(settings.redis_url)
    if problem is not None:
        print(f"hookyard worker: {problem}", file=sys.stderr)
        return EXIT_STORE_UNREACHABLE
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="hookyard-metrics-")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    # Serves the backlog gauges at scrape time: a frozen Redis must cost a scrape seconds, not hang it.
    client = redis_client(settings.redis_url, OPERATOR)
    if settings.worker_metrics_port:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=metrics_dir)  # type: ignore[no-untyped-call]
        registry.register(BacklogCollector(client, wall_ms, broker_url=settings.broker_url))
        registry.register(ReconcileCollector(client, wall_ms))
        start_http_server(settings.worker_metrics_port, addr=settings.host, registry=registry)
    children = [ChildSpec("ingester", [sys.executable, "-m", "processor.worker", "--ingester"], env)]
    children += [
        ChildSpec(f"worker-{i}", [sys.executable, "-m", "processor.worker"], env) for i in range(settings.workers)
    ]
    if settings.console.port:
        # The web console beside the workers (HOOKYARD_CONSOLE_PORT), restarted like them if it dies.
        children.append(ChildSpec("console", [sys.executable, "-m", "processor.console"], env))
    log.info(
        "processor.starting",
        workers=settings.workers,
        threads=settings.worker_threads,
        handlers=sorted(h.name for h in default_registry),
        metrics_port=settings.worker_metrics_port or None,
        console_port=settings.console.port,
        broker=redact_url(settings.broker_url),
    )
    try:
        return Supervisor(children, grace_s=settings.lease_s + 5).run()
    finally:
        client.close()
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            shutil.rmtree(metrics_dir, ignore_errors=True)
