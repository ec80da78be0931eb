"""Testing handlers: production's own ingest and runner on a private Redis, with a clock the test moves.

from hookyard.testing import Harness, sample_event

def test_sync_user() -> None:
    with Harness([sync_user]) as yard:
        yard.deliver(sample_event("dsync.user.updated"))
        yard.run()
"""

from __future__ import annotations

# Driving handlers in a test
from processor.testing import Harness, ManualClock, sample_event

__all__ = [
    # Driving handlers in a test
    "Harness",
    "ManualClock",
    "sample_event",
]
