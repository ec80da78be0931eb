"""An outage is said once when it starts and once, with its length, when it ends."""

from __future__ import annotations

import threading

from structlog.testing import capture_logs

from shared.errors import StoreUnavailable
from shared.outage import OutageLog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_outage_with_its_length() -> None:
    clock = Clock()
    outage = OutageLog("test", clock)
    with capture_logs() as logs:
        outage.recovered()  # nothing to say while all is well
        for where in ("ingest", "sweep", "leases", "runner") * 50:
            outage.failed(where, StoreUnavailable("redis: ConnectionError"))
        assert outage.down
        clock.now = 137.25
        outage.recovered()
        outage.recovered()
        outage.failed("sweep", StoreUnavailable("redis: TimeoutError"))
    events = [(e["event"], e.get("where"), e.get("down_s"), e.get("failed_calls")) for e in logs]
    assert events == [
        ("store.unavailable", "ingest", None, None),
        ("store.available_again", None, 37.2, 200),
        ("store.unavailable", "sweep", None, None),
    ]


def test_concurrent_failures_start_one_outage() -> None:
    outage = OutageLog("test")
    with capture_logs() as logs:
        threads = [threading.Thread(target=outage.failed, args=(f"t{i}", StoreUnavailable("down"))) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [e["event"] for e in logs] == ["store.unavailable"]
