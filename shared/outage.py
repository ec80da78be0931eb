"""Redis outages said once: one warning when the store stops answering, one line with the outage's length when it
answers again — instead of a warning from every loop and every call while it lasts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from shared.logging import get_logger

__all__ = ["OutageLog"]


class OutageLog:
    """Shared by every loop and thread of one process; thread-safe."""

    def __init__(self, logger: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None
        self._failures = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, where: str, error: BaseException) -> None:
        """A call failed because the store is unavailable; says so only for the first failure of an outage."""
        with self._lock:
            self._failures += 1
            if self._since is not None:
                return
            self._since = self._clock()
        get_logger(self._logger).warning("store.unavailable", where=where, error=str(error)[:200])

    def recovered(self) -> None:
        """A call succeeded; if an outage was on, says how long it lasted."""
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            if self._since is None:
                return
            down_s, failures = self._clock() - self._since, self._failures
            self._since, self._failures = None, 0
        get_logger(self._logger).warning("store.available_again", down_s=round(down_s, 1), failed_calls=failures)
