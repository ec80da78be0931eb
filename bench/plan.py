"""How big each part of the benchmark is: the full run (`make bench`) and the quick one (`--quick`, the test's)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FULL", "QUICK", "Plan"]


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    rounds: int
    # receiver (HTTP ack path)
    connections: int
    warmup_s: float
    saturation_s: float
    fixed_rate: float
    fixed_s: float
    # processor (end to end)
    events: int
    variant_events: int  # the secondary processor variants drain fewer, to fit the time budget
    resources: int
    handler_variants: int  # the "5 handlers" variant
    duplicate_share: float
    workers: int
    drain_timeout_s: float
    lag_rate: float
    lag_s: float
    rss_events: int
    recoveries: int
    recovery_work_ms: int
    recovery_timeout: str | None  # HOOKYARD_RECOVERY_TIMEOUT; None: the default (30 s), as deployed
    # Redis memory per event
    memory_events: int  # events admitted and handled per case
    # console pages
    console_events: int = 1_000_000  # events indexed before the pages are timed
    console_requests: int = 30  # requests per page and store


FULL = Plan(
    name="full",
    rounds=3,
    connections=50,
    warmup_s=3.0,
    saturation_s=10.0,
    fixed_rate=1000.0,
    fixed_s=8.0,
    events=20_000,
    variant_events=10_000,
    resources=200,
    handler_variants=5,
    duplicate_share=0.3,
    workers=2,
    drain_timeout_s=240.0,
    lag_rate=500.0,
    lag_s=20.0,
    rss_events=100_000,
    recoveries=3,
    recovery_work_ms=50,
    recovery_timeout=None,
    memory_events=10_000,
)

QUICK = Plan(
    name="quick",
    rounds=1,
    connections=20,
    warmup_s=0.0,
    saturation_s=1.0,
    fixed_rate=200.0,
    fixed_s=1.0,
    events=300,
    variant_events=300,
    resources=20,
    handler_variants=5,
    duplicate_share=0.3,
    workers=2,
    drain_timeout_s=20.0,
    lag_rate=100.0,
    lag_s=1.0,
    rss_events=300,
    recoveries=1,
    recovery_work_ms=50,
    recovery_timeout="3s",  # the smallest allowed: a 30 s recovery does not fit a one-minute smoke run
    memory_events=200,
    console_events=20_000,
    console_requests=5,
)
