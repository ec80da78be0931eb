"""Outages said once: one warning when the store (or the wake-up broker) stops answering, one line with the
outage's length when it answers again — instead of a warning from every loop and every call while it lasts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from shared.logging import get_logger

__all__ = ["OutageLog"]


class OutageLog:
    """Shared by every loop and thread of one process; thread-safe."""

    def __init__(self, logger: str, clock: Callable[[], float] = time.monotonic, *, subject: str = "store") -> None:
        self._logger = logger
        # The two events name what is unavailable: `store.unavailable`, `broker.available_again`.
        self._down_event = subject + ".unavailable"
        self._up_event = subject + ".available_again"
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None
        self._failures = 0

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, where: str, error: BaseException) -> None:
        """A call failed because the subject is unavailable; says so only for the first failure of an outage."""
        with self._lock:
            self._failures += 1
            if self._since is not None:
                return
            self._since = self._clock()
        get_logger(self._logger).warning(self._down_event, where=where, error=str(error)[:200])

    def recovered(self) -> None:
        """A call succeeded; if an outage was on, says how long it lasted."""
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            if self._since is None:
                return
            down_s, failures = self._clock() - self._since, self._failures
            self._since, self._failures = None, 0
        get_logger(self._logger).warning(self._up_event, down_s=round(down_s, 1), failed_calls=failures)
