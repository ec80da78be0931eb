"""A structlog logger that hands rendered lines to the OS in batches: one `write` per flush, not one per line.

On the receiver's hot path a flushed write per access-log line cost as much as verifying the signature. Lines
are written at least every `interval_s` (and whenever 64 KiB are waiting, and at exit); a process killed with
SIGKILL can lose the last interval's lines — logs, never events.
"""

from __future__ import annotations

import atexit
import os
import threading

__all__ = ["BatchedLineWriter"]


class BatchedLineWriter:
    """Collects rendered log lines (bytes) and writes them to a file descriptor in batches."""

    def __init__(self, fd: int, *, interval_s: float = 0.1, max_pending: int = 1 << 16) -> None:
        self._fd = fd
        self._interval_s = interval_s
        self._max_pending = max_pending
        self._pending: list[bytes] = []
        self._size = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hookyard-log-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    def msg(self, line: bytes | str) -> None:
        data = line.encode() if isinstance(line, str) else line
        with self._lock:
            self._pending.append(data)
            self._size += len(data) + 1
            if self._size >= self._max_pending:
                self._flush_locked()

    # structlog calls the method named after the level on the wrapped logger.
    debug = info = warning = warn = error = critical = exception = fatal = log = msg

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._pending:
            return
        data = memoryview(b"\n".join(self._pending) + b"\n")
        self._pending = []
        self._size = 0
        while data:
            try:
                written = os.write(self._fd, data)
            except InterruptedError:
                continue
            except OSError:
                return  # the log sink is gone (closed pipe): nothing sensible left to do with the lines
            data = data[written:]

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()
