"""A sender that behaves like WorkOS: signs every delivery attempt, sends concurrently and out of order, and retries
any non-200 with backoff until a deadline. It writes down every answer with its times, so the run can tell
whether the receiver ever said 200 while Redis could not have stored the delivery."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from chaos.stack import SECRET
from chaos.workload import Delivery, Workload
from shared.signature import sign

__all__ = ["Answer", "Outcome", "Sender", "issue_load"]

_CONCURRENCY = 48


@dataclass(frozen=True, slots=True)
class Answer:
    sent: float  # monotonic
    answered: float  # monotonic
    status: str


@dataclass
class Outcome:
    #: Event id -> wall time of the first 200 for its original body.
    accepted_at: dict[str, float] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    gave_up: int = 0
    #: Event ids whose changed-body redelivery was answered 200.
    conflicts_accepted: set[str] = field(default_factory=set)
    #: Changed-body redeliveries not sent because their original never got a 200.
    conflicts_unsent: int = 0


class Sender:
    """Sends deliveries at their planned times; `join` waits for every one to be answered 200 or given up."""

    def __init__(self, url: str, outcome: Outcome, *, seed: int, give_up_at: float) -> None:
        self.url = url
        self.outcome = outcome
        #: Monotonic time after which a delivery that still gets no 200 is given up.
        self.give_up_at = give_up_at
        self._rng = random.Random(seed)
        self._gate = asyncio.Semaphore(_CONCURRENCY)
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=_CONCURRENCY, max_keepalive_connections=_CONCURRENCY), timeout=10
        )
        self._accepted: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            task = asyncio.create_task(self._deliver(delivery))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def join(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    async def close(self) -> None:
        await self._client.aclose()

    def _accepted_signal(self, event_id: str) -> asyncio.Event:
        return self._accepted.setdefault(event_id, asyncio.Event())

    async def _deliver(self, delivery: Delivery) -> None:
        event_id = delivery.event.event_id
        delay = delivery.at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # its planned send time
        if delivery.conflict:
            # After the original is stored, so the original is the first arrival that dedupe keeps.
            try:
                await asyncio.wait_for(
                    self._accepted_signal(event_id).wait(), max(0.0, self.give_up_at - time.monotonic())
                )
            except TimeoutError:
                self.outcome.conflicts_unsent += 1
                return
        backoff = 0.05
        async with self._gate:
            while True:
                sent = time.monotonic()
                header = sign(delivery.body, SECRET.encode(), int(time.time() * 1000))
                try:
                    response = await self._client.post(
                        self.url, content=delivery.body, headers={"WorkOS-Signature": header}
                    )
                    status = str(response.status_code)
                except httpx.TransportError as exc:
                    status = type(exc).__name__
                self.outcome.answers.append(Answer(sent, time.monotonic(), status))
                self.outcome.statuses[status] += 1
                if status == "200":
                    if delivery.conflict:
                        self.outcome.conflicts_accepted.add(event_id)
                    else:
                        self.outcome.accepted_at.setdefault(event_id, time.time())
                        self._accepted_signal(event_id).set()
                    return
                if time.monotonic() > self.give_up_at:
                    self.outcome.gave_up += 1
                    return
                # Like WorkOS: retry any non-200, with exponential backoff.
                await asyncio.sleep(backoff * self._rng.uniform(0.5, 1.0))
                backoff = min(backoff * 2, 2.0)


async def issue_load(workload: Workload, sender: Sender, stop: asyncio.Event) -> int:
    """Issue ordinary events at the plan's rate until `stop` is set; returns how many were issued."""
    issued = 0
    while not stop.is_set():
        delay = workload.t0 + workload.next_offset() - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # the next event's issue time
            continue
        sender.send(workload.next_load())
        issued += 1
    return issued
