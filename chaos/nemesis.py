"""The nemesis: applies the plan's faults one after another while the sender keeps the ordinary load going, and
waits (with a deadline) for each fault's effect before the next, so every phase is measured on its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.crc import key_slot

from chaos.handlers import FRAGILE, ORDERED, UNORDERED
from chaos.ledger import LedgerReader
from chaos.plan import CLUSTER_FAULTS, EXTRA_FAULTS, FAULTS, Plan
from chaos.sender import Outcome, Sender
from chaos.stack import Stack
from chaos.workload import Role, Workload
from processor.deadletters import list_letters
from shared import keys

__all__ = ["ORDER", "Fault", "Nemesis"]

#: The order faults are applied in; a plan runs those it names.
ORDER = (*FAULTS[:4], *EXTRA_FAULTS, *CLUSTER_FAULTS, FAULTS[4])
_POLL_S = 0.25  # polling interval while waiting for a fault's effect
_INGEST_MARGIN_S = 1.0


@dataclass
class Fault:
    """One phase of the run: when it began and ended (wall and monotonic clocks) and what it did."""

    name: str
    started: float
    started_mono: float
    ended: float = 0.0
    ended_mono: float = 0.0
    #: The effect the fault is for was seen before its deadline (dead letters written, pairs taken over, ...).
    observed: bool = False
    note: str = ""
    #: When the process was paused, [SIGSTOP, SIGCONT], on the wall clock (as the ledger) and the monotonic one
    #: (as the sender's answers).
    paused: tuple[float, float] | None = None
    paused_mono: tuple[float, float] | None = None
    #: The calls a paused worker was inside: (handler, event id, attempt).
    frozen: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.ended - self.started


class Nemesis:
    def __init__(
        self,
        stack: Stack,
        plan: Plan,
        workload: Workload,
        sender: Sender,
        outcome: Outcome,
        ledger: LedgerReader,
        system: redis.Redis,
    ) -> None:
        self.stack = stack
        self.plan = plan
        self.workload = workload
        self.sender = sender
        self.outcome = outcome
        self.ledger = ledger
        self.system = system
        self.faults: list[Fault] = []
        self._current = Fault("start", time.time(), time.monotonic())

    async def run(self) -> list[Fault]:
        settle = self.plan.window_s  # long enough for every event of the stretch to have run
        apply: dict[str, Callable[[], Coroutine[Any, Any, bool]]] = {
            "future": self._future,
            "hang": self._hang,
            "kill": self._kill,
            "stop-worker": self._stop_worker,
            "kill-ingester": self._kill_ingester,
            "restart-receiver": self._restart_receiver,
            "restart-redis": self._restart_redis,
            "stop-redis": self._stop_redis,
            "failover": self._failover,
            "freeze-primary": self._freeze_primary,
            "migrate": self._migrate,
        }
        await self._phase("baseline", self._pause(settle))
        for name in ORDER:
            if name in self.plan.faults:
                await self._phase(name, apply[name]())
        await self._phase("cool-down", self._pause(settle))
        return self.faults

    async def _phase(self, name: str, effect: Coroutine[Any, Any, bool]) -> None:
        fault = Fault(name, time.time(), time.monotonic())
        self.faults.append(fault)
        self._current = fault
        try:
            fault.observed = await effect
        finally:
            fault.ended, fault.ended_mono = time.time(), time.monotonic()

    async def _pause(self, seconds: float) -> bool:
        await asyncio.sleep(seconds)  # a stretch of plain load: the baseline, or letting the last fault settle
        return True

    async def _until(self, done: Callable[[], bool], deadline_s: float) -> bool:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            try:
                if done():
                    return True
            except redis.RedisError:
                pass  # the system Redis may be restarting; ask again
            await asyncio.sleep(_POLL_S)
        return False

    # -- the faults ---------------------------------------------------------------------------------------------

    async def _future(self) -> bool:
        """Per future key: three events, one created in 2099, eight more; each on time, one a little after another."""
        now = time.monotonic()
        wanted: set[str] = set()
        for key in self.workload.future_keys:
            batch = self.workload.chosen(Role.BEFORE_FUTURE, key, 3, now, spacing_s=0.4)
            batch += self.workload.chosen(Role.FUTURE, key, 1, now + 1.2)
            batch += self.workload.chosen(Role.AFTER_FUTURE, key, 8, now + 1.6, spacing_s=0.4)
            self.sender.send(batch)
            wanted |= {d.event.event_id for d in batch}
        self._current.note = f"{len(wanted)} events on {len(self.workload.future_keys)} key(s)"
        return await self._until(lambda: wanted <= self._completed(ORDERED), self.plan.phase_deadline_s)

    async def _hang(self) -> bool:
        deliveries = [
            d
            for key in self.workload.hung_keys
            for d in self.workload.chosen(Role.HUNG, key, self.plan.events_per_hung_key, time.monotonic())
        ]
        self.sender.send(deliveries)
        wanted = {d.event.event_id for d in deliveries}
        self._current.note = f"{len(wanted)} events on {len(self.workload.hung_keys)} hung key(s)"
        return await self._until(lambda: wanted <= self._dead(FRAGILE, wanted), self.plan.phase_deadline_s)

    async def _kill(self) -> bool:
        deliveries = self.workload.chosen(
            Role.KILLER, self.workload.killer_key, self.plan.killer_events, time.monotonic()
        )
        self.sender.send(deliveries)
        wanted = {d.event.event_id for d in deliveries}
        self._current.note = f"{len(wanted)} events on the killer key"
        return await self._until(lambda: wanted <= self._dead(FRAGILE, wanted), self.plan.phase_deadline_s)

    async def _stop_worker(self) -> bool:
        """SIGSTOP a worker inside handler calls for two leases, then SIGCONT; its calls must have been taken over."""
        fault = self._current
        pid, frozen = await self._pause_busy_worker(deadline_s=10.0)
        if pid is None:
            fault.note = "no worker to pause"
            return False
        stopped = (time.time(), time.monotonic())
        try:
            await asyncio.sleep(self.plan.worker_stop_s)  # the pause itself
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        fault.paused, fault.paused_mono = (stopped[0], time.time()), (stopped[1], time.monotonic())
        fault.frozen = frozen
        fault.note = f"worker {pid} paused {self.plan.worker_stop_s:.0f} s inside {len(frozen)} call(s)"

        def settled() -> bool:
            self.ledger.refresh()
            ended = {(c.handler, c.event_id, c.attempt) for c in self.ledger.ends}
            return all(call in ended for call in frozen)  # the paused calls themselves returned

        return bool(frozen) and await self._until(settled, self.plan.phase_deadline_s)

    async def _pause_busy_worker(self, deadline_s: float) -> tuple[int | None, list[tuple[str, str, int]]]:
        """SIGSTOP a worker caught inside handler calls (those calls cannot change while it is stopped)."""
        deadline = time.monotonic() + deadline_s
        workers = self.stack.worker_pids()
        while time.monotonic() < deadline:
            busy = [pid for pid in self.ledger.in_flight().values() if pid in workers]
            if busy:
                pid = busy[0]
                try:
                    os.kill(pid, signal.SIGSTOP)
                except ProcessLookupError:
                    continue  # it died meanwhile (a restart): look again
                frozen = [m for m, p in self.ledger.in_flight().items() if p == pid]
                if frozen:
                    calls = [(h, e, int(a)) for h, e, a in (m.split("|") for m in frozen)]
                    return pid, calls
                os.kill(pid, signal.SIGCONT)  # its calls returned just before the stop: try again
            await asyncio.sleep(0.005)
            workers = self.stack.worker_pids()
        if not workers:
            return None, []
        os.kill(workers[0], signal.SIGSTOP)
        return workers[0], []

    async def _stop_redis(self) -> bool:
        """SIGSTOP Redis for longer than the recovery timeout: the receiver must answer 503, never 200."""
        pid = self.stack.redis.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        stopped = (time.time(), time.monotonic())
        try:
            await asyncio.sleep(self.plan.redis_stop_s)  # the pause itself
        finally:
            os.kill(pid, signal.SIGCONT)
        resumed = time.monotonic()
        self._current.paused, self._current.paused_mono = (stopped[0], time.time()), (stopped[1], resumed)
        self._current.note = f"Redis paused {self.plan.redis_stop_s:.0f} s"
        return await self._until(
            lambda: any(a.status == "200" and a.sent > resumed for a in self.outcome.answers[-200:]),
            self.plan.phase_deadline_s,
        )

    async def _failover(self) -> bool:
        """SIGKILL the primary holding inbox shard 0 (and a share of the state); its replica takes over, and the old
        primary comes back as the new one's replica."""
        cluster = self.stack.cluster
        assert cluster is not None
        primary = cluster.port_for_key(keys.INBOX)
        killed = time.time()
        promoted = await asyncio.to_thread(cluster.fail_over, primary)
        took = time.time() - killed
        await asyncio.to_thread(cluster.restart, primary)
        self._current.note = (
            f"primary :{primary} SIGKILLed; replica :{promoted} serving after {took:.1f} s; the old primary rejoined"
        )
        return await self._until(lambda: self._ingested_since(killed + took), self.plan.phase_deadline_s)

    async def _freeze_primary(self) -> bool:
        """SIGSTOP the primary of the first state shards (connections open, nothing answers) until its replica has
        taken over, then SIGCONT it: it must rejoin as a replica, its stale writes discarded."""
        cluster = self.stack.cluster
        assert cluster is not None
        primary = cluster.port_for_key(keys.stats_key(0))
        frozen = time.time()
        promoted = await asyncio.to_thread(cluster.fail_over, primary, freeze=True)
        took = time.time() - frozen
        await asyncio.to_thread(cluster.thaw, primary)
        self._current.note = f"primary :{primary} SIGSTOPped; replica :{promoted} serving after {took:.1f} s; resumed"
        return await self._until(lambda: self._ingested_since(frozen + took), self.plan.phase_deadline_s)

    async def _migrate(self) -> bool:
        """Move the slots of inbox shard 1 and of four state shards to other primaries, key by key, under load."""
        cluster = self.stack.cluster
        assert cluster is not None
        started = time.time()
        moving = [keys.inbox_keys(1).queue, *(keys.stats_key(shard) for shard in range(4))]
        for key in moving:
            slot = key_slot(key.encode())
            source = cluster.port_for_slot(slot)
            target = next(p.port for p in cluster.primaries() if p.port != source)
            await asyncio.to_thread(cluster.move_slot, slot, target, between_steps=0.02)
        moved = time.time()
        self._current.note = f"{len(moving)} slots moved live in {moved - started:.1f} s"
        return await self._until(lambda: self._ingested_since(moved), self.plan.phase_deadline_s)

    async def _kill_ingester(self) -> bool:
        victims = [pid for pid, role in self.stack.children().items() if role == "ingester"]
        if not victims:
            return False
        killed = time.time()
        os.kill(victims[0], signal.SIGKILL)
        self._current.note = f"SIGKILL ingester {victims[0]}"
        # Ingestion resumes once the lapsed ingest lease is taken over (by a stand-by worker or the new ingester).
        return await self._until(lambda: self._ingested_since(killed), self.plan.phase_deadline_s)

    async def _restart_receiver(self) -> bool:
        await asyncio.to_thread(self.stack.restart_receiver)
        self._current.note = "receiver SIGTERM and start"
        return True

    async def _restart_redis(self) -> bool:
        restarted = time.time()
        await asyncio.to_thread(self.stack.redis.restart)
        self._current.note = "Redis SIGTERM (AOF flushed) and start"
        return await self._until(lambda: self._ingested_since(restarted), self.plan.phase_deadline_s)

    # -- what the ledger and Redis say so far -------------------------------------------------------------------

    def _completed(self, handler: str) -> set[str]:
        self.ledger.refresh()
        return {c.event_id for c in self.ledger.ends if c.handler == handler}

    def _ingested_since(self, since: float) -> bool:
        """An event accepted well after `since` was run (by chaos.unordered, which has no hold-back): events flow
        again. "Well after": an event answered just after a kill may have been ingested just before it."""
        fresh = {e for e, at in self.outcome.accepted_at.items() if at > since + _INGEST_MARGIN_S}
        return bool(fresh & self._completed(UNORDERED))

    def _dead(self, handler: str, event_ids: set[str]) -> set[str]:
        return {letter.event_id for letter in list_letters(self.system, "dead", handler=handler, event_ids=event_ids)}
