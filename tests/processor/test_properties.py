"""Property: under any mix of duplicates, reordering (within and beyond the window) and handler failures, each
handler completes each event once, per key in issued order except events it is told are late."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processor import Event, Registry
from processor.testing import Harness
from tests.conftest import StoreUnderTest


@dataclass
class Ledger:
    ok: list[tuple[str, str, bool, int]] = field(default_factory=list)  # (key, event id, late, clock)
    calls: dict[str, list[int]] = field(default_factory=dict)  # event id -> attempts seen


def _position(events: dict[str, tuple[int, str]], eid: str) -> tuple[int, str]:
    return events[eid]


scenario = st.fixed_dictionaries(
    {
        "events": st.lists(
            st.tuples(st.integers(0, 3), st.integers(0, 60)), min_size=1, max_size=24
        ),  # (resource, issued second)
        "copies": st.lists(st.integers(1, 3), min_size=24, max_size=24),
        "order_seed": st.randoms(use_true_random=False),
        "gaps": st.lists(st.sampled_from([0, 0, 0.5, 2, 4, 7, 12]), min_size=72, max_size=72),
        "steps": st.lists(st.booleans(), min_size=72, max_size=72),
        "failures": st.sets(st.tuples(st.integers(0, 23), st.integers(1, 3)), max_size=20),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=scenario)
def test_each_event_once_in_order_under_any_schedule(store: StoreUnderTest, case: dict[str, Any]) -> None:
    store.empty()
    events = {f"event_{i:02d}": (second * 1000, f"event_{i:02d}") for i, (_, second) in enumerate(case["events"])}
    resource = {f"event_{i:02d}": f"user_{r}" for i, (r, _) in enumerate(case["events"])}
    failures: set[tuple[int, int]] = case["failures"]
    ordered, unordered = Ledger(), Ledger()
    registry = Registry()
    yard = Harness(registry, redis_url=store.url, seed=1)

    def record(ledger: Ledger, event: Event, fail: bool) -> None:
        ledger.calls.setdefault(event.id, []).append(event.attempt)
        if fail and (int(event.id[-2:]), event.attempt) in failures:
            raise RuntimeError("injected")
        ledger.ok.append((resource[event.id], event.id, event.late, yard.clock()))

    registry.handler("dsync.*", name="ordered", max_attempts=3, min_backoff=1, max_backoff=2)(
        lambda e: record(ordered, e, True)
    )
    registry.handler("dsync.*", name="unordered", order_by="none")(lambda e: record(unordered, e, False))

    # Given every event delivered 1-3 times in a shuffled order, with gaps within and beyond the window
    deliveries = [eid for i, eid in enumerate(events) for _ in range(case["copies"][i])]
    case["order_seed"].shuffle(deliveries)
    try:
        for n, eid in enumerate(deliveries):
            second = events[eid][0] // 1000
            yard.deliver(
                {
                    "id": eid,
                    "event": "dsync.user.updated",
                    "data": {"id": resource[eid]},
                    "created_at": f"2026-01-01T00:00:{second:02d}.000Z" if second < 60 else "2026-01-01T00:01:00Z",
                }
            )
            yard.clock.advance(case["gaps"][n])
            if case["steps"][n]:
                yard.step()
        yard.run()
        dead = {d["event_id"]: d for d in yard.dead_letters()}
    finally:
        yard.close()

    # Then the unordered handler completed every event exactly once
    assert sorted(e for _, e, _, _ in unordered.ok) == sorted(events)
    # And the ordered one completed each event once unless it was dead-lettered after 3 attempts
    completed = [e for _, e, _, _ in ordered.ok]
    assert len(completed) == len(set(completed))
    assert set(completed) | set(dead) == set(events)
    assert not set(completed) & set(dead)
    for eid, attempts in ordered.calls.items():
        assert attempts == list(range(1, len(attempts) + 1))
        if eid in dead:
            assert attempts == [1, 2, 3] and dead[eid]["attempts"] == 3
    # And per key, events not flagged late arrive in issued order; a late one really is behind a settled one
    settled_at: dict[str, int] = {eid: at for _, eid, _, at in ordered.ok}
    settled_at.update({eid: d["last_failure_ms"] for eid, d in dead.items()})
    last: dict[str, tuple[int, str]] = {}
    for key, eid, late, at in ordered.ok:
        position = events[eid]
        if not late:
            assert key not in last or position > last[key], f"{eid} delivered out of order on {key}"
            last[key] = position
        else:
            assert any(
                resource[other] == key and events[other] > position and settled_at[other] <= at
                for other in settled_at
                if other != eid
            ), f"{eid} flagged late with nothing newer settled before it"
