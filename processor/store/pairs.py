"""The pair state machine: admit events into (handler, ordering key) queues, claim a pair's head under a fenced
lease, record its completion or failure, give it back, renew the lease, replay a letter, resend a completed event.

Every call runs one script (or one per shard, pipelined) whose keys share one hash slot; every pair script takes
the fixed argument header of `StoreTimings.pair_header`.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import Sequence
from typing import Any

import redis

from processor.records import Admission, Admitted, ArchivedEvent, Claim, DeadLetter, Settled, StoreTimings
from processor.routing import Target, decode_routes, encode_routes
from processor.store.batch import NotReplicated
from processor.store.calls import Scripts
from shared import keys
from shared.errors import StoreUnavailable

__all__ = ["Pairs"]


def _pair_keys(pk: keys.PairKeys) -> list[str]:
    return [pk.pair, pk.queue, pk.state, pk.due, pk.stats, pk.body]


class Pairs:
    def __init__(self, client: redis.Redis, scripts: Scripts, timings: StoreTimings) -> None:
        self.client = client
        self.scripts = scripts
        self.timings = timings

    def _run(
        self,
        name: str,
        pk: keys.PairKeys,
        now_ms: int,
        args: list[Any],
        extra_keys: Sequence[str] = (),
        *,
        replicated: bool = False,
    ) -> Any:
        keys_, args_ = [*_pair_keys(pk), *extra_keys], [*self.timings.pair_header(now_ms), *args]
        return self.scripts.run(name, keys_, args_, replicated=replicated)

    # -- admission ------------------------------------------------------------------------------------------

    def admit(self, batch: Sequence[Admission], now_ms: int) -> Admitted:
        """Admit a batch: first each event's arrival (dedupe by source and event id), then its pairs' queues.

        Round trip 1, one script per event shard: the first arrival of an event id sets its dedupe marker with
        its body's digest and its routes, and archives it; a later arrival gets those back. Round trip 2, one
        script per pair shard: each event joins the queues of the routes its *first* arrival recorded, each
        (pair, event) at most once. A crash anywhere leaves the inbox untrimmed and the same messages are admitted
        again, which changes nothing. A redelivery with another body joins no queue at all: the first arrival's
        own message is what gets (or got) admitted.
        """
        t = self.timings
        events: dict[int, tuple[list[str], list[Any], list[int]]] = {}
        for index, item in enumerate(batch):
            ek = keys.event_keys(item.source, item.event_id)
            ev_keys, ev_args, ev_items = events.setdefault(ek.shard, ([ek.index], [], []))
            ev_keys += (ek.seen, ek.archive)
            routes = encode_routes(item.targets)
            ev_args += (
                item.received_at_ms, f"{item.source}:{item.event_id}", item.raw, item.source, item.event_type,
                item.signed_at_ms, item.issued_at_ms, ",".join(tg.handler for tg in item.targets),
                item.digest.encode() + b"|" + routes, routes,
            )  # fmt: skip
            ev_items.append(index)
        batch_calls = self.scripts.batch()
        for ev_keys, ev_args, _ in events.values():
            batch_calls.add("admit_events", ev_keys, [t.dedupe_ttl_ms, t.retention_ms, *ev_args])
        replies = batch_calls.run(replicated=True)  # the inbox is trimmed on the strength of these writes
        fresh = [False] * len(batch)
        conflicts = [False] * len(batch)
        routed: list[tuple[Target, ...]] = [()] * len(batch)
        for (_, _, ev_items), reply in zip(events.values(), replies, strict=True):
            for index, row in zip(ev_items, reply, strict=True):
                item = batch[index]
                if int(row[0]) == 1:
                    fresh[index], routed[index] = True, item.targets
                    continue
                marker = bytes(row[1])
                if b"|" not in marker:
                    # A marker written before digests and routes were recorded (it held the receipt time): route
                    # as that version did; the per-(pair, event) markers keep it at most once.
                    routed[index] = item.targets
                    continue
                digest, _, routes = marker.partition(b"|")
                # Not a secret (a digest of the body, to tell conflicting bodies apart), compared in constant time
                # all the same, as every digest is here.
                if not hmac.compare_digest(digest, item.digest.encode()):
                    conflicts[index] = True
                    continue
                try:
                    routed[index] = decode_routes(item.source, routes)
                except ValueError:
                    # A marker written before routes were recorded: route as that version did.
                    routed[index] = item.targets
        return Admitted(fresh, conflicts, self._queue(batch, routed, now_ms))

    def _queue(
        self, batch: Sequence[Admission], routed: list[tuple[Target, ...]], now_ms: int
    ) -> list[tuple[int, str]]:
        by_shard: dict[int, tuple[list[str], list[Any], list[tuple[int, str]]]] = {}
        for item, targets in zip(batch, routed, strict=True):
            for tg in targets:
                pk = keys.pair_keys(tg.shard, tg.pair_id)
                p_keys, p_args, p_items = by_shard.setdefault(tg.shard, ([pk.due, pk.stats], [], []))
                p_keys += (pk.pair, pk.queue, pk.state, pk.body, pk.got_prefix + item.event_id)
                p_args += (
                    tg.pair_id, item.event_id, item.issued_at_ms, item.received_at_ms, tg.handler, item.source,
                    tg.ordering_key, 0 if tg.ordered else 1, item.message,
                )  # fmt: skip
                p_items.append((tg.shard, tg.pair_id))
        if not by_shard:
            return []
        calls = self.scripts.batch()
        for p_keys, p_args, _ in by_shard.values():
            calls.add("admit", p_keys, [*self.timings.pair_header(now_ms), *p_args])
        replies = calls.run(replicated=True)
        wake: list[tuple[int, str]] = []
        for (_, _, p_items), reply in zip(by_shard.values(), replies, strict=True):
            for n, target in enumerate(p_items):
                if int(reply[n * 3 + 2]) == 1:
                    wake.append(target)
        return wake

    # -- running --------------------------------------------------------------------------------------------

    def claim(self, shard: int, pair_id: str, token: str, now_ms: int, *, alone: bool = False) -> Claim | str:
        """Lease the pair's head event; or say why not: 'busy', 'empty' or 'not_due'. `alone`: the run will have
        its worker process to itself (so if it never reports back, its event is to blame)."""
        sent_at = time.monotonic()
        # Replicated: a failover must not forget a claim whose handler is called (its re-run says attempt > 1).
        pk = keys.pair_keys(shard, pair_id)
        try:
            reply = self._run("claim", pk, now_ms, [pair_id, token, int(alone)], replicated=True)
        except NotReplicated as exc:
            # Taken on the primary alone: nobody will run it, so give it back uncounted at once; left to lapse, it
            # would look like a call that never reported back (a suspect, to be run alone).
            if not isinstance(exc.replies[0], Exception):
                self._give_back(Claim.from_reply(shard, pair_id, token, exc.replies[0], sent_at), now_ms)
            raise
        return Claim.from_reply(shard, pair_id, token, reply, sent_at)

    def _give_back(self, claim: Claim | str, now_ms: int) -> None:
        if isinstance(claim, Claim):
            with contextlib.suppress(StoreUnavailable):  # if even this fails, the lease lapses by itself
                self.release(claim, now_ms)

    def complete(
        self, claim: Claim, now_ms: int, *, wake: bool, skipped: DeadLetter | None = None, claim_next: bool = False
    ) -> Settled:
        """Record the head event done (or skipped); with `claim_next`, lease the next one if it is runnable."""
        pk = keys.pair_keys(claim.shard, claim.pair_id)
        dk = keys.DeadLetterKeys(claim.shard)
        member = f"{claim.pair_id}:{claim.event_id}"
        sent_at = time.monotonic()
        try:
            reply = self._complete(claim, now_ms, pk, dk, member, wake=wake, skipped=skipped, claim_next=claim_next)
        except NotReplicated as exc:
            # The completion stands (a failover that took it back would re-run the event as a later attempt, the
            # documented window), but the next event it leased must not run on an unreplicated claim: give it back.
            reply = exc.replies[0]
            if isinstance(reply, Exception):
                raise
            if len(reply) > 3:
                self._give_back(Claim.from_reply(claim.shard, claim.pair_id, claim.token, reply[3:], sent_at), now_ms)
            return Settled.from_reply(reply[:3])
        settled = Settled.from_reply(reply)
        if len(reply) > 3:
            next_claim = Claim.from_reply(claim.shard, claim.pair_id, claim.token, reply[3:], sent_at)
            if isinstance(next_claim, Claim):
                return Settled(settled.outcome, settled.next_due_ms, settled.wake, next_claim)
        return settled

    def _complete(
        self,
        claim: Claim,
        now_ms: int,
        pk: keys.PairKeys,
        dk: keys.DeadLetterKeys,
        member: str,
        *,
        wake: bool,
        skipped: DeadLetter | None,
        claim_next: bool,
    ) -> Any:
        return self._run(
            "complete",
            pk,
            now_ms,
            [
                claim.pair_id, claim.token, claim.event_id, int(claim.late), int(wake),
                "skipped" if skipped is not None else "done", member, skipped.encode() if skipped else b"",
                int(claim_next), claim.attempt,
            ],
            [dk.skipped, dk.records, pk.got_prefix + claim.event_id],
            # A chained claim is a claim: replicated before its handler is called, like `claim`'s own.
            replicated=claim_next,
        )  # fmt: skip

    def fail(
        self, claim: Claim, now_ms: int, *, retry_at_ms: int, max_attempts: int, letter: DeadLetter, wake: bool
    ) -> Settled:
        """Record a failed attempt: retry at `retry_at_ms`, or after `max_attempts` make `letter` a dead letter."""
        dk = keys.DeadLetterKeys(claim.shard)
        reply = self._run(
            "fail",
            keys.pair_keys(claim.shard, claim.pair_id),
            now_ms,
            [
                claim.pair_id, claim.token, claim.event_id, int(claim.late), int(wake), retry_at_ms, max_attempts,
                f"{claim.pair_id}:{claim.event_id}", letter.encode(),
            ],
            [dk.dead, dk.records],
        )  # fmt: skip
        return Settled.from_reply(reply)

    def release(self, claim: Claim, now_ms: int, *, not_before_ms: int = 0) -> bool:
        """Give a claimed pair back unrun (the attempt is not counted); False if the lease was lost already."""
        pk = keys.pair_keys(claim.shard, claim.pair_id)
        return bool(self._run("release", pk, now_ms, [claim.pair_id, claim.token, not_before_ms]))

    def renew(self, shard: int, pair_id: str, token: str, now_ms: int) -> bool:
        return bool(self._run("renew", keys.pair_keys(shard, pair_id), now_ms, [pair_id, token]))

    def replay(self, letter: DeadLetter, event: ArchivedEvent, now_ms: int, *, from_dead: bool) -> bool:
        """Put a letter back in its handler's queue at its issued position; True if it was still a letter."""
        pk = keys.pair_keys(letter.shard, letter.pair)
        dk = keys.DeadLetterKeys(letter.shard)
        member = f"{letter.pair}:{letter.event_id}"
        reply = self._run(
            "replay",
            pk,
            now_ms,
            [
                letter.pair, letter.event_id, letter.issued_at_ms, member, letter.handler, letter.source,
                letter.ordering_key, 0 if letter.ordered else 1, "dead" if from_dead else "skipped", event.message(),
                letter.attempts,
            ],
            [dk.dead if from_dead else dk.skipped, dk.records, pk.got_prefix + letter.event_id],
        )  # fmt: skip
        return int(reply[0]) == 1

    def resend(self, target: Target, event: ArchivedEvent, now_ms: int) -> str:
        """Queue an event `target`'s handler completed again, at its issued position and without the hold-back
        window; 'resent', or why not: 'pending' (queued or running for this pair) or 'letter' (dead or skipped)."""
        pk = keys.pair_keys(target.shard, target.pair_id)
        dk = keys.DeadLetterKeys(target.shard)
        reply = self._run(
            "resend",
            pk,
            now_ms,
            [
                target.pair_id, event.event_id, event.issued_at_ms, f"{target.pair_id}:{event.event_id}",
                target.handler, event.source, target.ordering_key, 0 if target.ordered else 1, event.message(),
            ],
            [pk.got_prefix + event.event_id, dk.dead, dk.skipped],
        )  # fmt: skip
        first = reply[0]
        return "resent" if first == 1 else (first.decode() if isinstance(first, bytes) else str(first))
