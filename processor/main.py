"""`python -m processor`: the worker supervisor. Checks that every handler imports, serves the workers' merged
Prometheus metrics, and keeps `HOOKYARD_WORKERS` worker processes and one dedicated ingester process running
(restarting any that die)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

import redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

from processor.discovery import load_handlers
from processor.engine import wall_ms
from processor.handlers import default_registry
from processor.stats import BacklogCollector
from processor.supervisor import ChildSpec, Supervisor
from shared.errors import ConfigError, RegistrationError
from shared.logging import configure_logging, get_logger
from shared.settings import Settings

__all__ = ["main"]

log = get_logger("hookyard.processor")


def main() -> int:
    try:
        settings = Settings.from_env(os.environ, require_secret=False)
    except ConfigError as exc:
        print(f"hookyard worker: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        # Import once here so a broken handler module stops us now, not in a restart loop of children.
        load_handlers(settings)
    except RegistrationError as exc:
        print(f"hookyard worker: {exc}", file=sys.stderr)
        return 2
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="hookyard-metrics-")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=2)
    if settings.worker_metrics_port:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=metrics_dir)  # type: ignore[no-untyped-call]
        registry.register(BacklogCollector(client, wall_ms))
        start_http_server(settings.worker_metrics_port, addr=settings.host, registry=registry)
    children = [ChildSpec("ingester", [sys.executable, "-m", "processor.worker", "--ingester"], env)]
    children += [
        ChildSpec(f"worker-{i}", [sys.executable, "-m", "processor.worker"], env) for i in range(settings.workers)
    ]
    log.info(
        "processor.starting",
        workers=settings.workers,
        threads=settings.worker_threads,
        handlers=sorted(h.name for h in default_registry),
        metrics_port=settings.worker_metrics_port or None,
    )
    try:
        return Supervisor(children, grace_s=settings.lease_s + 5).run()
    finally:
        client.close()
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            shutil.rmtree(metrics_dir, ignore_errors=True)
