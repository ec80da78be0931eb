"""The reconciler's state in Redis: the lease that makes one worker the leader, its cursor in the Events API's
list, which fetched events are already known, and the tally of events whose first arrival came through the API
(missed deliveries). Key templates are in `shared.keys` (`RECONCILE_*`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from processor.store.calls import call
from shared import keys, scripts

__all__ = ["MISSED_LIMIT", "Cursor", "MissedTally", "ReconcileState"]

#: The missed list keeps this many of the newest event ids (the counters keep counting).
MISSED_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the reconciler is: the last event id it read (`after`), and the time up to which it has read every
    event (`position_ms`, its lag is now minus that). `None`s: it never ran."""

    after: str | None = None
    position_ms: int | None = None
    updated_ms: int | None = None
    #: The round that wrote it reached the end of the list (the next one reads from a time, not after `after`).
    caught_up: bool = False
    #: The `created_at` of the `after` event (unix ms), when known.
    after_ms: int | None = None


@dataclass(frozen=True, slots=True)
class MissedTally:
    """Per source: events first seen through the API (`missed`), and webhooks that came only after their API
    copy (`late_webhooks`); the newest missed ids, newest first."""

    missed: dict[str, int]
    late_webhooks: dict[str, int]
    recent: list[str]


class ReconcileState:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        # The ingest lease's script is a generic "take, keep or give up one lease": the same rules serve here.
        self._lease = client.register_script(scripts.source("inbox_lease"))

    # -- leadership -----------------------------------------------------------------------------------------

    def hold_lease(self, token: str, lease_ms: int) -> bool:
        return bool(call(self._lease, keys=[keys.RECONCILE_LEASE], args=[token, lease_ms]))

    def release_lease(self, token: str) -> None:
        call(self._lease, keys=[keys.RECONCILE_LEASE], args=[token, 0])

    # -- cursor ---------------------------------------------------------------------------------------------

    def cursor(self) -> Cursor:
        found = call(self.client.hgetall, keys.RECONCILE_CURSOR)
        got = {k.decode() if isinstance(k, bytes) else k: v.decode() for k, v in found.items()}
        return Cursor(
            after=got.get("after") or None,
            position_ms=int(got["position_ms"]) if got.get("position_ms") else None,
            updated_ms=int(got["updated_ms"]) if got.get("updated_ms") else None,
            caught_up=got.get("caught_up") == "1",
            after_ms=int(got["after_ms"]) if got.get("after_ms") else None,
        )

    def save_cursor(self, cursor: Cursor, token: str | None) -> bool:
        """Store the cursor; with a `token`, only while that token still holds the lease (a leader that was
        paused past its lease must not move the cursor back under the new one). Returns whether it was stored."""
        fields = {"after": cursor.after or "", "position_ms": cursor.position_ms or 0, "updated_ms": cursor.updated_ms,
                  "caught_up": "1" if cursor.caught_up else "", "after_ms": cursor.after_ms or 0}  # fmt: skip
        if token is None:
            call(self.client.hset, keys.RECONCILE_CURSOR, mapping=fields)
            return True

        def store(tx: redis.client.Pipeline) -> bool:
            holder = tx.get(keys.RECONCILE_LEASE)
            if holder not in (token, token.encode()):
                return False
            tx.multi()
            tx.hset(keys.RECONCILE_CURSOR, mapping=fields)  # type: ignore[arg-type]
            return True

        return bool(call(self.client.transaction, store, keys.RECONCILE_LEASE, value_from_callable=True))

    # -- backoff shared by every reconciler ---------------------------------------------------------------

    def not_before_ms(self) -> int:
        """The time before which no reconciler may call the API (0: none), so a backoff outlives its leader."""
        raw = call(self.client.get, keys.RECONCILE_NOT_BEFORE)
        return int(raw) if raw else 0

    def defer(self, until_ms: int, keep_ms: int) -> None:
        """Hold every reconciler back until `until_ms` (a later deadline already stored stays); the key expires
        after `keep_ms` of real time so a stale one cannot linger."""

        def store(tx: redis.client.Pipeline) -> None:
            stored = tx.get(keys.RECONCILE_NOT_BEFORE)
            if stored is not None and int(stored) >= until_ms:
                return
            tx.multi()
            tx.set(keys.RECONCILE_NOT_BEFORE, until_ms, px=max(1, keep_ms))

        call(self.client.transaction, store, keys.RECONCILE_NOT_BEFORE)

    # -- what is known --------------------------------------------------------------------------------------

    def known(self, source: str, event_ids: Sequence[str]) -> list[bool]:
        """Per event id: has an arrival of it been admitted within the dedupe window (its marker exists)?"""
        pipe = self.client.pipeline(transaction=False)
        for event_id in event_ids:
            pipe.exists(keys.event_keys(source, event_id).seen)
        return [bool(n) for n in call(pipe.execute)]

    def already_read(self, source: str, event_ids: Sequence[str]) -> list[bool]:
        """Per event id: did a reconciler read it before (it lies in a window the loop reads again)?"""
        pipe = self.client.pipeline(transaction=False)
        for event_id in event_ids:
            pipe.zscore(keys.RECONCILE_READ, f"{source}:{event_id}")
        return [score is not None for score in call(pipe.execute)]

    def mark_read(self, source: str, events: Sequence[tuple[str, int]], keep_ms: int) -> None:
        """Remember (event id, created ms) pairs as read; the set lapses after `keep_ms` without a write."""
        if not events:
            return
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(keys.RECONCILE_READ, {f"{source}:{event_id}": created for event_id, created in events})
        pipe.pexpire(keys.RECONCILE_READ, keep_ms)
        call(pipe.execute)

    def forget_read(self, before_ms: int) -> None:
        """Drop the read events created before `before_ms`: no round reads that far back again."""
        call(self.client.zremrangebyscore, keys.RECONCILE_READ, "-inf", f"({before_ms}")

    # -- missed deliveries ----------------------------------------------------------------------------------

    def record_missed(self, events: Sequence[tuple[str, str]], now_ms: int) -> None:
        """Count (source, event id) pairs whose first arrival came through the Events API."""
        if not events:
            return
        pipe = self.client.pipeline(transaction=False)
        for source, event_id in events:
            pipe.hincrby(keys.RECONCILE_STATS, f"missed:{source}", 1)
            pipe.zadd(keys.RECONCILE_MISSED, {f"{source}:{event_id}": now_ms})
        pipe.zremrangebyrank(keys.RECONCILE_MISSED, 0, -MISSED_LIMIT - 1)
        call(pipe.execute)

    def were_missed(self, events: Sequence[tuple[str, str]]) -> list[bool]:
        """Per (source, event id): was its first arrival an API copy (so a webhook of it now comes late)?"""
        pipe = self.client.pipeline(transaction=False)
        for source, event_id in events:
            pipe.zscore(keys.RECONCILE_MISSED, f"{source}:{event_id}")
        return [score is not None for score in call(pipe.execute)]

    def record_late_webhooks(self, sources: Sequence[str]) -> None:
        if not sources:
            return
        pipe = self.client.pipeline(transaction=False)
        for source in sources:
            pipe.hincrby(keys.RECONCILE_STATS, f"late_webhook:{source}", 1)
        call(pipe.execute)

    def tally(self, recent: int = 10) -> MissedTally:
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.RECONCILE_STATS)
        pipe.zrevrange(keys.RECONCILE_MISSED, 0, recent - 1)
        counters, newest = call(pipe.execute)
        missed: dict[str, int] = {}
        late: dict[str, int] = {}
        for raw_field, raw_value in counters.items():
            kind, _, source = raw_field.decode().partition(":")
            target = missed if kind == "missed" else late if kind == "late_webhook" else None
            if target is not None:
                target[source] = int(raw_value)
        return MissedTally(missed=missed, late_webhooks=late, recent=[m.decode() for m in newest])
