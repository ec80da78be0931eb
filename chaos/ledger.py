"""The handlers' ledger: one line when a call starts and one when it returns, kept in a Redis of its own (not the
one under test, which the nemesis pauses and restarts), plus the calls in flight so the nemesis can pause a worker
mid-handler and say which calls it froze."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import redis

__all__ = ["IN_FLIGHT", "LEDGER", "Call", "LedgerReader", "in_flight_marker"]

LEDGER = "chaos:ledger"
IN_FLIGHT = "chaos:inflight"  # "<handler>|<event id>|<attempt>" -> pid, while the call runs


def in_flight_marker(handler: str, event_id: str, attempt: int) -> str:
    return f"{handler}|{event_id}|{attempt}"


@dataclass(frozen=True, slots=True)
class Call:
    """One handler call as its handler wrote it down: at its start, or (with `ended`) when it returned."""

    handler: str
    event_id: str
    attempt: int
    late: bool
    pid: int
    started: float  # wall-clock seconds, taken as the handler was entered
    issued_ms: int  # `event.issued_at`: the position the processor ordered the event by
    resource: str  # `data.id` of the body the handler was given
    state: str  # `data.state` of that body
    lease_at_start: bool  # `event.lease_held()` on entry
    ended: float | None = None
    lease_at_end: bool | None = None

    def line(self) -> bytes:
        return orjson.dumps(
            {
                "h": self.handler, "e": self.event_id, "a": self.attempt, "l": self.late, "p": self.pid,
                "t0": self.started, "i": self.issued_ms, "r": self.resource, "s": self.state,
                "h0": self.lease_at_start, "t1": self.ended, "h1": self.lease_at_end,
            }
        )  # fmt: skip

    @classmethod
    def from_line(cls, raw: bytes | str) -> Call:
        f: dict[str, Any] = orjson.loads(raw)
        return cls(
            f["h"], f["e"], int(f["a"]), bool(f["l"]), int(f["p"]), float(f["t0"]), int(f["i"]), str(f["r"]),
            str(f["s"]), bool(f["h0"]), f["t1"], f["h1"],
        )  # fmt: skip


class LedgerReader:
    """Reads the ledger incrementally (the drain polls it; re-reading every line each time would not scale)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self.starts: list[Call] = []
        self.ends: list[Call] = []
        self._read = 0

    def refresh(self) -> None:
        lines = self.client.lrange(LEDGER, self._read, -1)
        self._read += len(lines)
        for raw in lines:
            call = Call.from_line(raw)
            (self.starts if call.ended is None else self.ends).append(call)

    def in_flight(self) -> dict[str, int]:
        """Marker -> pid of every call in flight now."""
        return {_text(k): int(v) for k, v in self.client.hgetall(IN_FLIGHT).items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
