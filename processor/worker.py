"""One worker process: load handlers, wire the engine, run a Dramatiq worker until SIGTERM/SIGINT.

`python -m processor.worker` is what the `python -m processor` supervisor starts, once per worker process.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

import dramatiq

from processor.engine import Engine
from processor.handlers import default_registry
from processor.metrics import WorkerMetrics
from processor.startup import start_process
from shared.logging import get_logger
from shared.settings import Settings

__all__ = ["EXIT_RESTART", "main", "serve"]

log = get_logger("hookyard.worker")

#: How often Dramatiq's consumer polls an idle queue at most (ms): bounds wake-up latency when idle.
_CONSUMER_IDLE_MS = 100


#: Workers leave the ingest lease to the dedicated ingester for this long after they start.
STANDBY_INGEST_DELAY_S = 3.0


def serve_ingester(settings: Settings, stop: threading.Event) -> None:
    """Run the dedicated ingester until `stop` is set.

    Ingestion is one lease holder at a time; in a process of its own it does not compete for the GIL with the
    handler threads. Workers stand by: if this process dies, one of them takes the lease over when it lapses.
    """
    engine = Engine(settings, default_registry, metrics=WorkerMetrics())
    engine.loops.start(ingest_only=True)
    log.info("ingester.started", pid=os.getpid())
    try:
        stop.wait()
    finally:
        engine.close()
        log.info("ingester.stopped", pid=os.getpid())


#: Exit status of a worker that restarts itself because too many of its threads are stuck in abandoned calls.
EXIT_RESTART = 3


def serve(settings: Settings, stop: threading.Event, *, standby_ingest: bool = False) -> int:
    """Run one worker until `stop` is set; handlers must already be registered in the default registry.

    Returns 0, or `EXIT_RESTART` when the worker stopped itself because too many threads were stuck in calls that
    passed their timeout (Python cannot stop a thread; a fresh process can).
    """
    engine = Engine(settings, default_registry, metrics=WorkerMetrics())
    if standby_ingest:
        engine.loops.ingest_delay_s = STANDBY_INGEST_DELAY_S
    engine.loops.on_exhausted = stop.set
    worker = dramatiq.Worker(engine.broker, worker_threads=settings.worker_threads, worker_timeout=_CONSUMER_IDLE_MS)
    worker.start()
    log.info(
        "worker.started",
        pid=os.getpid(),
        threads=settings.worker_threads,
        handlers=sorted(h.name for h in default_registry),
    )
    try:
        stop.wait()
    finally:
        log.info("worker.stopping", pid=os.getpid())
        if engine.runner.inflight.abandoned:
            # Restarting for stuck threads: let the calls that are not stuck finish first (each within its own
            # timeout, at most the recovery timeout here), so that none of them is cut off by the exit.
            engine.runner.drain(settings.recovery_timeout_s)
        worker.stop(timeout=int(settings.lease_s * 1000))
        abandoned = engine.runner.inflight.abandoned
        engine.close()
        log.info("worker.stopped", pid=os.getpid(), abandoned_calls=abandoned)
    return EXIT_RESTART if abandoned else 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    ingester = args == ["--ingester"]
    settings = start_process()
    if isinstance(settings, int):
        return settings
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if ingester:
        serve_ingester(settings, stop)
        return 0
    status = serve(settings, stop, standby_ingest=True)
    if status == EXIT_RESTART:
        # Threads stuck in handler calls would keep a normal interpreter exit waiting: leave at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


if __name__ == "__main__":
    sys.exit(main())
