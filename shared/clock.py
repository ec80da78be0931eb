"""The one wall clock: Unix time in milliseconds, the unit of signature timestamps, receive times and leases.

Every process reads wall time through `wall_ms` (and takes it as a `clock_ms` parameter where tests need to
hand in another), so "now" means the same thing in the receiver, the workers and the CLI.
"""

from __future__ import annotations

import time

__all__ = ["wall_ms"]


def wall_ms() -> int:
    """Unix time in whole milliseconds."""
    return time.time_ns() // 1_000_000
