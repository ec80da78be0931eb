"""The console's last hour: every `HOOKYARD_CONSOLE_SAMPLE_INTERVAL` it reads the workers' run counters and lag
histogram (their metrics endpoint) and the backlog (Redis), and keeps the reading in a bounded Redis list — so
the overview charts rate and lag without a Prometheus server. With several consoles, one records each interval.

Each point holds cumulative counters; the charts come from the differences between neighbours, so a missed
interval widens one step instead of distorting it, and a worker restart (a counter going down) counts from zero.
"""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import redis

from processor import overview
from processor.cli.scrape import Reading, merged_buckets, quantile
from processor.stats import read_snapshot
from shared import keys
from shared.clock import wall_ms
from shared.logging import get_logger

__all__ = ["HISTORY_POINTS", "Point", "Sampler", "Step", "read_history", "record", "steps"]

#: Points kept: an hour of steps at the default interval (one minute).
HISTORY_POINTS = 61

log = get_logger("hookyard.console")


@dataclass(frozen=True, slots=True)
class Point:
    at_ms: int
    #: handler -> handler calls since its workers started (any outcome)
    runs: dict[str, float] = field(default_factory=dict)
    #: upper bound -> cumulative count of the delivery-lag histogram, every handler added up
    lag: dict[float, float] = field(default_factory=dict)
    #: handler -> events pending
    pending: dict[str, int] = field(default_factory=dict)

    def encode(self) -> bytes:
        lag = {repr(bound): count for bound, count in self.lag.items()}
        return orjson.dumps({"at": self.at_ms, "runs": self.runs, "lag": lag, "pending": self.pending})

    @classmethod
    def decode(cls, raw: bytes) -> Point | None:
        try:
            data: Any = orjson.loads(raw)
            return cls(
                at_ms=int(data["at"]),
                runs={str(k): float(v) for k, v in data.get("runs", {}).items()},
                lag={float(k): float(v) for k, v in data.get("lag", {}).items()},
                pending={str(k): int(v) for k, v in data.get("pending", {}).items()},
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return None  # not a point this version can read: left out of the charts


@dataclass(frozen=True, slots=True)
class Step:
    """What happened between two points."""

    at_ms: int
    runs_per_s: float | None
    lag_p50_s: float | None
    lag_p99_s: float | None
    pending: int


def point_of(reading: Reading | None, pending: dict[str, int], at_ms: int) -> Point:
    if reading is None:
        return Point(at_ms, pending=pending)
    return Point(at_ms, dict(reading.runs), merged_buckets(reading), pending)


def record(client: redis.Redis, point: Point, interval_ms: int) -> bool:
    """Keep `point` unless another console already recorded this interval; True when it was kept."""
    slot = point.at_ms // interval_ms
    if not client.set(keys.console_sample_key(slot), b"1", nx=True, px=interval_ms * 2):
        return False
    pipe = client.pipeline(transaction=True)
    pipe.lpush(keys.CONSOLE_HISTORY, point.encode())
    pipe.ltrim(keys.CONSOLE_HISTORY, 0, HISTORY_POINTS - 1)
    pipe.execute()
    return True


def read_history(client: redis.Redis) -> list[Point]:
    """The points kept, oldest first."""
    raw: list[bytes] = client.lrange(keys.CONSOLE_HISTORY, 0, HISTORY_POINTS - 1)  # type: ignore[assignment]
    points = [p for p in (Point.decode(item) for item in raw) if p is not None]
    return sorted(points, key=lambda p: p.at_ms)


def steps(points: list[Point]) -> list[Step]:
    """Rate and lag quantiles between each point and the one before it."""
    found = []
    for before, after in itertools.pairwise(points):
        elapsed = (after.at_ms - before.at_ms) / 1000
        if elapsed <= 0:
            continue
        runs = sum(_increase(after.runs.get(h, 0.0), before.runs.get(h, 0.0)) for h in after.runs)
        lag: dict[float, float] = defaultdict(float)
        for bound, count in after.lag.items():
            lag[bound] = _increase(count, before.lag.get(bound, 0.0))
        found.append(
            Step(
                at_ms=after.at_ms,
                runs_per_s=runs / elapsed if after.runs else None,
                lag_p50_s=quantile(0.5, dict(lag)),
                lag_p99_s=quantile(0.99, dict(lag)),
                pending=sum(after.pending.values()),
            )
        )
    return found


def _increase(now: float, before: float) -> float:
    # A counter that went down means a worker restarted: what it counted since is all that is known.
    return now - before if now >= before else now


class Sampler:
    """Reads and records a point every `interval_s` in a thread of its own, from start until `stop`; keeps the
    newest two readings of the workers' endpoint in memory, for the overview's current rate."""

    def __init__(self, client: redis.Redis, metrics_url: str | None, interval_s: float) -> None:
        self.client = client
        self.metrics_url = metrics_url
        self.interval_s = interval_s
        self.readings: list[Reading] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # One client for the pages' reads of the endpoint (making one costs more than a page's Redis reads).
        self._http = httpx.Client()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="console-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._http.close()

    def read_now(self) -> Reading | str:
        """A fresh reading of the workers' endpoint for a page, or why there is none."""
        return overview.read_metrics(self._http, self.metrics_url)

    def sample_once(self, http: httpx.Client) -> Point:
        """Read the endpoint and the backlog, remember the reading, record the point; returns it."""
        reading = overview.read_metrics(http, self.metrics_url)
        now_ms = wall_ms()
        snapshot = read_snapshot(self.client, now_ms)
        found = reading if isinstance(reading, Reading) else None
        if found is not None:
            with self._lock:
                self.readings = [*self.readings[-1:], found]
        point = point_of(found, {h: b.pending for h, b in snapshot.handlers.items()}, now_ms)
        record(self.client, point, max(1, int(self.interval_s * 1000)))
        return point

    def previous(self) -> Reading | None:
        """The older of the two newest readings: what the overview's rate is measured against."""
        with self._lock:
            return self.readings[0] if self.readings else None

    def _run(self) -> None:
        with httpx.Client() as http:
            while True:
                try:
                    self.sample_once(http)
                except redis.RedisError as exc:
                    log.warning("console.sample_failed", error=type(exc).__name__)
                if self._stop.wait(self.interval_s):
                    return
