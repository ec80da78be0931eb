"""Per handler, what a chaos run's calls show: what was lost, doubled, started stale, misordered, late and
dead-lettered, and how long each event waited.

Calls are compared by when they *started*: attempts count handler starts, so of two calls of one event the one
started later must carry the higher attempt (the documented re-run window, docs/guarantees.md §5) — even when the
earlier one, paused with its worker, finishes last. Order is judged as the processor promises it: no call of an
event may start, unflagged, once an event issued after it has been completed on that key.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from chaos.handlers import FRAGILE, ORDERED_HANDLERS, UNORDERED
from chaos.ledger import Call
from chaos.nemesis import Fault
from chaos.plan import Plan
from chaos.sender import Outcome
from chaos.workload import Role, Workload
from processor.deadletters import Letter

__all__ = ["EXPECTED_ERROR", "Evidence", "HandlerFigures", "by_event", "handler_figures", "percentile"]

#: What each chosen key's events must become in chaos.fragile.
EXPECTED_ERROR = {Role.HUNG: "HandlerTimeout", Role.KILLER: "WorkerLost"}


@dataclass(frozen=True, slots=True)
class Evidence:
    plan: Plan
    workload: Workload
    outcome: Outcome
    faults: list[Fault]
    starts: list[Call]
    ends: list[Call]
    letters: list[Letter]
    metrics: dict[str, float]
    log: list[dict[str, Any]]
    drained: bool


@dataclass
class HandlerFigures:
    handler: str
    handled: int = 0
    lost: int = 0
    doubled_window: int = 0  # events completed twice, the later call with a higher attempt
    doubled_bug: int = 0  # ... without: a bug
    stale_starts: int = 0  # calls started after a call of a newer attempt of the same event
    misordered: int = 0  # calls started, not flagged late, after a later-issued event of the key completed
    behind_unfinished: int = 0  # calls started after a later-issued event's attempt that did not complete
    late: int = 0
    innocent_dead: int = 0
    expected_dead: Counter[str] = field(default_factory=Counter)
    wrong_letters: int = 0  # chosen events dead-lettered with another error than expected
    #: (ready, lag): per event of an ordinary key, when it could first run and how much later it finished.
    lags: list[tuple[float, float]] = field(default_factory=list)

    def lag(self, q: float, since: float = 0.0, until: float = float("inf")) -> float | None:
        values = [lag for ready, lag in self.lags if since <= ready <= until]
        return percentile(values, q) if values else None


def percentile(values: Iterable[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def by_event(calls: Iterable[Call]) -> dict[str, list[Call]]:
    grouped: dict[str, list[Call]] = defaultdict(list)
    for call in sorted(calls, key=lambda c: c.started):
        grouped[call.event_id].append(call)
    return grouped


def _position(call: Call) -> tuple[int, str]:
    return (call.issued_ms, call.event_id)


def handler_figures(handler: str, ev: Evidence, dead: dict[str, str], chosen_keys: set[str]) -> HandlerFigures:
    events = ev.workload.events
    starts = [c for c in ev.starts if c.handler == handler]
    ends = [c for c in ev.ends if c.handler == handler]
    fig = HandlerFigures(handler)
    completed = {c.event_id for c in ends}
    fig.handled = len(completed)
    fig.lost = len(set(ev.outcome.accepted_at) - completed - set(dead))
    for event_id, error in dead.items():
        expected = EXPECTED_ERROR.get(events[event_id].role) if event_id in events else None
        if handler != FRAGILE or expected is None:
            fig.innocent_dead += 1
        elif error == expected:
            fig.expected_dead[error] += 1
        else:
            fig.wrong_letters += 1
    for calls in by_event(ends).values():
        if len(calls) > 1:
            if all(a.attempt < b.attempt for a, b in pairwise(calls)):
                fig.doubled_window += 1
            else:
                fig.doubled_bug += 1
    for calls in by_event(starts).values():
        highest = 0
        for call in calls:
            if call.attempt <= highest:
                fig.stale_starts += 1
            highest = max(highest, call.attempt)
    if handler in ORDERED_HANDLERS:
        fig.late = len({c.event_id for c in starts if c.late})
        _judge_order(fig, starts, ends)
    hold_back = 0.0 if handler == UNORDERED else ev.plan.window_s
    fig.lags = _lags(ends, ev.outcome.accepted_at, hold_back, ordered=handler != UNORDERED, skip=chosen_keys)
    return fig


def _judge_order(fig: HandlerFigures, starts: list[Call], ends: list[Call]) -> None:
    latest: dict[str, int] = {}
    for call in starts:
        latest[call.event_id] = max(latest.get(call.event_id, 0), call.attempt)
    done_by_key: dict[str, list[Call]] = defaultdict(list)
    for call in sorted(ends, key=lambda c: c.ended or 0.0):
        # Only a completion the processor recorded moves the key on: one followed by a newer attempt of its event
        # was not (its worker died or lost the lease after the handler returned — the window of §5).
        if call.attempt == latest[call.event_id]:
            done_by_key[call.resource].append(call)
    starts_by_key: dict[str, list[Call]] = defaultdict(list)
    for call in sorted(starts, key=lambda c: c.started):
        starts_by_key[call.resource].append(call)
    for key, key_starts in starts_by_key.items():
        done = done_by_key.get(key, [])
        finished = 0
        done_max: tuple[int, str] | None = None
        started_max: tuple[int, str] | None = None
        for call in key_starts:
            while finished < len(done) and (done[finished].ended or 0.0) < call.started:
                position = _position(done[finished])
                done_max = position if done_max is None else max(done_max, position)
                finished += 1
            position = _position(call)
            if not call.late:
                if done_max is not None and position < done_max:
                    fig.misordered += 1
                elif started_max is not None and position < started_max:
                    # Issued before an event whose attempt was never recorded as complete (it failed, its worker
                    # died, or its completion never reached Redis): in order as far as the processor knows.
                    fig.behind_unfinished += 1
            started_max = position if started_max is None else max(started_max, position)


def _lags(
    ends: list[Call], accepted: dict[str, float], hold_back: float, *, ordered: bool, skip: set[str]
) -> list[tuple[float, float]]:
    """Per event, its first completion minus when it could first have run: its acceptance plus the hold-back
    window, or (ordered) the completion of the event before it on its key, whichever is later."""
    first: dict[str, Call] = {}
    for call in sorted(ends, key=lambda c: c.ended or 0.0):
        first.setdefault(call.event_id, call)
    by_key: dict[str, list[Call]] = defaultdict(list)
    for call in first.values():
        if call.resource not in skip and call.event_id in accepted:
            by_key[call.resource if ordered else call.event_id].append(call)
    points = []
    for calls in by_key.values():
        previous: float | None = None
        for call in calls:
            ended = call.ended or 0.0
            ready = accepted[call.event_id] + hold_back
            if previous is not None:
                ready = max(ready, previous)
            points.append((ready, max(0.0, ended - ready)))
            previous = ended
    return points
