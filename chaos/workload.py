"""The events of a chaos run, from its seed: an endless stream of ordinary events (delivered late, early, twice,
or again with a changed body, as a retrying sender does) and the events on the nemesis's chosen keys."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from chaos.plan import Plan

__all__ = ["FAR_FUTURE", "KILLER_KEY", "Delivery", "PlannedEvent", "Role", "Workload", "hung_keys"]

#: The `created_at` of the far-future events: decades ahead of any receipt.
FAR_FUTURE = "2099-01-01T00:00:00.000Z"
_TYPES = ("dsync.user.updated", "dsync.user.created", "dsync.user.updated")
_STATES = ("active", "inactive")


class Role:
    LOAD = "load"
    HUNG = "hung"  # on a key where chaos.fragile hangs
    KILLER = "killer"  # on the key where chaos.fragile kills its worker
    FUTURE = "future"  # created_at in 2099
    BEFORE_FUTURE = "before-future"  # ordinary events on a future key, issued before the future one
    AFTER_FUTURE = "after-future"  # ... and after it: none may be late


@dataclass(frozen=True, slots=True)
class PlannedEvent:
    event_id: str
    role: str
    resource: str
    event_type: str
    state: str
    issued_ms: int | None  # its created_at; None for a far-future one


@dataclass(frozen=True, slots=True)
class Delivery:
    at: float  # monotonic time to send it
    event: PlannedEvent
    body: bytes
    #: A redelivery of the event's id with another body: sent only once the original was accepted.
    conflict: bool = False


#: The one key on which chaos.fragile kills its worker.
KILLER_KEY = "directory_user_killer"


def hung_keys(plan: Plan) -> list[str]:
    """The keys on which chaos.fragile hangs."""
    return [f"directory_user_hung_{j}" for j in range(plan.hung_keys)]


def _created_at(issued_ms: int | None) -> str:
    if issued_ms is None:
        return FAR_FUTURE
    return datetime.fromtimestamp(issued_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def body(event: PlannedEvent, *, resource: str | None = None, state: str | None = None) -> bytes:
    return orjson.dumps(
        {
            "id": event.event_id,
            "event": event.event_type,
            "data": {"id": resource or event.resource, "directory_id": "directory_01", "state": state or event.state},
            "created_at": _created_at(event.issued_ms),
            "object": "event",
        }
    )


@dataclass
class Workload:
    """Events in issued order from `plan.seed`; `t0_ms`/`t0` pin the run's start on the wall and monotonic clocks."""

    plan: Plan
    t0_ms: int
    t0: float
    events: dict[str, PlannedEvent] = field(default_factory=dict)
    _issued: int = 0
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.plan.seed)

    @property
    def hung_keys(self) -> list[str]:
        return hung_keys(self.plan)

    @property
    def killer_key(self) -> str:
        return KILLER_KEY

    @property
    def future_keys(self) -> list[str]:
        return [f"directory_user_future_{j}" for j in range(self.plan.future_keys)]

    def next_offset(self) -> float:
        """When (seconds after t0) the next ordinary event is issued."""
        return self._issued / self.plan.rate

    def next_load(self) -> list[Delivery]:
        """The next ordinary event's deliveries: displaced in time (and duplicated) like a retrying sender's."""
        plan, rng = self.plan, self._rng
        offset = self.next_offset()
        key = rng.randrange(plan.resources)
        event = PlannedEvent(
            event_id=f"event_{plan.seed:04d}{self._issued:07d}",
            role=Role.LOAD,
            resource=f"directory_user_{key:04d}",
            event_type=rng.choice(_TYPES),
            state=rng.choice(_STATES),
            issued_ms=self.t0_ms + round(offset * 1000),
        )
        self._issued += 1
        self.events[event.event_id] = event
        raw = body(event)
        copies = 1 if rng.random() >= plan.duplicate_share else rng.choice((2, 3))
        deliveries = []
        for copy in range(copies):
            roll = rng.random()
            if roll < 0.6:
                shift = 0.0
            elif roll < 0.9:
                shift = rng.uniform(0, plan.window_s)  # overtaken within the window: put back in order
            else:
                shift = rng.uniform(plan.window_s, 4 * plan.window_s)  # beyond it: delivered late
            if copy:
                shift += rng.uniform(0, 2 * plan.window_s)  # a retry of a delivery whose answer was lost
            deliveries.append(Delivery(self.t0 + offset + shift, event, raw))
        if rng.random() < plan.conflict_share:
            # Same id, another resource and state, validly signed: dedupe by id must keep the first arrival.
            other = (key + 1 + rng.randrange(plan.resources - 1)) % plan.resources
            flipped = _STATES[1 - _STATES.index(event.state)]
            changed = body(event, resource=f"directory_user_{other:04d}", state=flipped)
            deliveries.append(Delivery(self.t0 + offset + rng.uniform(0.5, 6), event, changed, conflict=True))
        return deliveries

    def chosen(self, role: str, resource: str, count: int, start: float, *, spacing_s: float = 0.2) -> list[Delivery]:
        """`count` events on a chosen key, issued from `start` (monotonic) on, each delivered once and on time."""
        deliveries = []
        for k in range(count):
            at = start + k * spacing_s
            event = PlannedEvent(
                event_id=f"event_{self.plan.seed:04d}_{resource.removeprefix('directory_user_')}_{role}_{k:02d}",
                role=role,
                resource=resource,
                event_type="dsync.user.updated",
                state=_STATES[k % 2],
                issued_ms=None if role == Role.FUTURE else self.t0_ms + round((at - self.t0) * 1000),
            )
            self.events[event.event_id] = event
            deliveries.append(Delivery(at, event, body(event)))
        return deliveries
