"""The processor's state store: every atomic step on Redis, as a typed call on one Lua script.

Redis is the source of truth (docs/guarantees.md). Each method runs one script whose keys share one hash slot,
so a crash between two calls leaves a state the next call (or the sweep) picks up; Dramatiq messages only say
"look at these pairs now".
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson
import redis
from redis.commands.core import Script

from processor.routing import Target, decode_routes, encode_routes
from shared import keys
from shared.errors import ArchiveExpired, StoreUnavailable
from shared.wire import QueuedEvent, encode_message

__all__ = [
    "Admission",
    "Admitted",
    "Claim",
    "Settled",
    "Store",
]

_PAIR_SCRIPTS = ("admit", "claim", "complete", "fail", "release", "renew", "replay")
_PLAIN_SCRIPTS = ("admit_events", "sweep", "inbox_ack", "inbox_lease", "keep_archive", "trim_letters", "heartbeat")

#: The poison list keeps this many of the newest undecodable messages (it only grows on corruption or a bug).
POISON_LIMIT = 10_000


def _load(name: str) -> str:
    return resources.files("processor").joinpath("scripts", f"{name}.lua").read_text()


# Errors that mean "Redis cannot do this now" (down, loading, full, a demoted master): the caller backs off.
_OUTAGES = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.MasterDownError,
)


# The same, as an error code at the start of a reply or inside a script's error ("... @user_script: 4: -OOM ...").
_OUTAGE_CODES = re.compile(r"(?:^|-)(?:MISCONF|NOREPLICAS|OOM|READONLY|LOADING|MASTERDOWN)\b")


@dataclass(frozen=True, slots=True)
class Admission:
    """An event ready to be admitted: its archive fields and the pairs it fans out to."""

    source: str
    event_id: str
    event_type: str
    raw: bytes
    signed_at_ms: int
    received_at_ms: int
    issued_at_ms: int
    targets: tuple[Target, ...]
    message: bytes
    digest: str  # of the raw body: tells a redelivery of the same bytes from a conflicting one


@dataclass(frozen=True, slots=True)
class Admitted:
    """What admitting a batch did: per event whether it was new and whether its body conflicted with the first
    arrival's, and the pairs to wake now."""

    fresh: list[bool]
    conflicts: list[bool]
    wake: list[tuple[int, str]]


@dataclass(frozen=True, slots=True)
class Claim:
    """The head event of a pair, leased to one runner."""

    shard: int
    pid: str
    token: str
    event_id: str
    issued_at_ms: int
    attempt: int
    late: bool
    replay: bool
    received_at_ms: int
    first_failure_ms: int
    handler: str
    source: str
    ordering_key: str
    message: bytes
    #: The event's previous call never reported back (its worker died or lost the lease): run it alone.
    suspect: bool = False
    #: Monotonic time the claim was sent: the lease is this process's from then for at most its length.
    sent_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Settled:
    """What a complete/fail call did: its outcome, when the pair is next due (-1: nothing pending), wake, and
    the pair's next event when `complete` was asked to claim it and it was runnable."""

    outcome: str
    next_due_ms: int
    wake: bool
    next_claim: Claim | None = None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Store:
    """Typed access to the processor's Redis state; translates redis-py errors into `StoreUnavailable`."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        window_ms: int,
        grace_ms: int,
        lease_ms: int,
        dedupe_ttl_ms: int,
        retention_ms: int,
        letter_retention_ms: int = 30 * 86_400_000,
        letter_limit: int = 100_000,
    ) -> None:
        self.client = client
        self.letter_retention_ms = letter_retention_ms
        # Per shard and kind (dead, skipped): the bound is kept shard by shard, each in one script.
        self.letter_limit_per_shard = max(1, -(-letter_limit // keys.SHARDS))
        self.window_ms = window_ms
        self.grace_ms = grace_ms
        self.lease_ms = lease_ms
        self.dedupe_ttl_ms = dedupe_ttl_ms
        self.retention_ms = retention_ms
        prelude = _load("prelude")
        self._scripts: dict[str, Script] = {}
        for name in _PAIR_SCRIPTS:
            self._scripts[name] = client.register_script(prelude + "\n" + _load(name))
        for name in _PLAIN_SCRIPTS:
            self._scripts[name] = client.register_script(_load(name))

    # -- ingest ---------------------------------------------------------------------------------------------

    def read_inbox(self, limit: int) -> list[bytes]:
        return self._call(self.client.lrange, keys.INBOX, 0, limit - 1)  # type: ignore[no-any-return]

    def hold_ingest_lease(self, token: str, lease_ms: int) -> bool:
        return bool(self._run("inbox_lease", [keys.INBOX_LEASE], [token, lease_ms]))

    def release_ingest_lease(self, token: str) -> None:
        """Give the ingest lease up (on shutdown), so another ingester need not wait for it to lapse."""
        self._run("inbox_lease", [keys.INBOX_LEASE], [token, 0])

    def ack_inbox(self, token: str, count: int, lease_ms: int) -> bool:
        return bool(self._run("inbox_ack", [keys.INBOX, keys.INBOX_LEASE], [token, count, lease_ms]))

    def park_poison(self, message: bytes, reason: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.rpush(keys.INBOX_POISON, reason.encode() + b"\n" + message)
        pipe.ltrim(keys.INBOX_POISON, -POISON_LIMIT, -1)
        self._call(pipe.execute)

    def wait_for_inbox(self, timeout_s: float, client: redis.Redis) -> None:
        """Block until the receiver signals new messages or the timeout passes (on a dedicated connection)."""
        self._call(client.blpop, [keys.INBOX_WAKE], timeout=timeout_s)

    def admit(self, batch: Sequence[Admission], now_ms: int) -> Admitted:
        """Admit a batch: first each event's arrival (dedupe by source and event id), then its pairs' queues.

        Round trip 1, one script per event shard: the first arrival of an event id sets its dedupe marker with
        its body's digest and its routes, and archives it; a later arrival gets those back. Round trip 2, one
        script per pair shard: each event joins the queues of the routes its *first* arrival recorded, each
        (pair, event) at most once. A crash anywhere leaves the inbox untrimmed and the same messages are admitted
        again, which changes nothing. A redelivery with another body joins no queue at all: the first arrival's
        own message is what gets (or got) admitted.
        """
        events: dict[int, tuple[list[str], list[Any], list[int]]] = {}
        for index, item in enumerate(batch):
            ek = keys.event_keys(item.source, item.event_id)
            ev_keys, ev_args, ev_items = events.setdefault(ek.shard, ([ek.index], [], []))
            ev_keys += (ek.seen, ek.archive)
            routes = encode_routes(item.targets)
            ev_args += (
                item.received_at_ms, f"{item.source}:{item.event_id}", item.raw, item.source, item.event_type,
                item.signed_at_ms, item.issued_at_ms, ",".join(t.handler for t in item.targets),
                item.digest.encode() + b"|" + routes, routes,
            )  # fmt: skip
            ev_items.append(index)
        pipe = self.client.pipeline(transaction=False)
        for ev_keys, ev_args, _ in events.values():
            self._scripts["admit_events"](
                keys=ev_keys, args=[self.dedupe_ttl_ms, self.retention_ms, *ev_args], client=pipe
            )
        replies = self._call(pipe.execute)
        fresh = [False] * len(batch)
        conflicts = [False] * len(batch)
        routed: list[tuple[Target, ...]] = [()] * len(batch)
        for (_, _, ev_items), reply in zip(events.values(), replies, strict=True):
            for index, row in zip(ev_items, reply, strict=True):
                item = batch[index]
                if int(row[0]) == 1:
                    fresh[index], routed[index] = True, item.targets
                    continue
                digest, _, routes = bytes(row[1]).partition(b"|")
                if digest.decode() != item.digest:
                    conflicts[index] = True
                    continue
                try:
                    routed[index] = decode_routes(item.source, routes)
                except ValueError:
                    # A marker written before routes were recorded: route as that version did.
                    routed[index] = item.targets
        pairs: dict[int, tuple[list[str], list[Any], list[tuple[int, str]]]] = {}
        for item, targets in zip(batch, routed, strict=True):
            for t in targets:
                pk = keys.pair_keys(t.shard, t.pair_id)
                p_keys, p_args, p_items = pairs.setdefault(t.shard, ([pk.due, pk.stats], [], []))
                p_keys += (pk.pair, pk.queue, pk.state, pk.body, pk.got_prefix + item.event_id)
                p_args += (
                    t.pair_id, item.event_id, item.issued_at_ms, item.received_at_ms, t.handler, item.source,
                    t.ordering_key, 0 if t.ordered else 1, item.message,
                )  # fmt: skip
                p_items.append((t.shard, t.pair_id))
        wake: list[tuple[int, str]] = []
        if not pairs:
            return Admitted(fresh, conflicts, wake)
        pipe = self.client.pipeline(transaction=False)
        for p_keys, p_args, _ in pairs.values():
            self._scripts["admit"](
                keys=p_keys, args=[now_ms, self.window_ms, self.grace_ms, self.dedupe_ttl_ms, *p_args], client=pipe
            )
        replies = self._call(pipe.execute)
        for (_, _, p_items), reply in zip(pairs.values(), replies, strict=True):
            for n, target in enumerate(p_items):
                if int(reply[n * 3 + 2]) == 1:
                    wake.append(target)
        return Admitted(fresh, conflicts, wake)

    # -- running --------------------------------------------------------------------------------------------

    def claim(self, shard: int, pid: str, token: str, now_ms: int) -> Claim | str:
        """Lease the pair's head event; or say why not: 'busy', 'empty' or 'not_due'."""
        pk = keys.pair_keys(shard, pid)
        sent_at = time.monotonic()
        reply = self._run(
            "claim",
            _pair(pk),
            [pid, token, now_ms, self.lease_ms, self.window_ms, self.grace_ms, self.dedupe_ttl_ms],
        )
        return _claim(shard, pid, token, reply, sent_at)

    def complete(
        self,
        claim: Claim,
        now_ms: int,
        *,
        wake: bool,
        skipped_record: bytes | None = None,
        claim_next: bool = False,
    ) -> Settled:
        """Record the head event done (or skipped); with `claim_next`, lease the next one if it is runnable."""
        pk = keys.pair_keys(claim.shard, claim.pid)
        dk = keys.DeadLetterKeys(claim.shard)
        member = f"{claim.pid}:{claim.event_id}"
        sent_at = time.monotonic()
        reply = self._run(
            "complete",
            [*_pair(pk), dk.skipped, dk.records],
            [
                claim.pid, claim.token, claim.event_id, now_ms, self.window_ms, self.grace_ms,
                self.dedupe_ttl_ms, int(claim.late), int(wake),
                "skipped" if skipped_record is not None else "done", member, skipped_record or b"",
                int(claim_next), self.lease_ms,
            ],
        )  # fmt: skip
        settled = _settled(reply)
        if len(reply) > 3:
            next_claim = _claim(claim.shard, claim.pid, claim.token, reply[3:], sent_at)
            if isinstance(next_claim, Claim):
                return Settled(settled.outcome, settled.next_due_ms, settled.wake, next_claim)
        return settled

    def fail(
        self,
        claim: Claim,
        now_ms: int,
        *,
        retry_at_ms: int,
        max_attempts: int,
        record: bytes,
        wake: bool,
    ) -> Settled:
        pk = keys.pair_keys(claim.shard, claim.pid)
        dk = keys.DeadLetterKeys(claim.shard)
        reply = self._run(
            "fail",
            [*_pair(pk), dk.dead, dk.records],
            [
                claim.pid, claim.token, claim.event_id, now_ms, self.window_ms, self.grace_ms,
                self.dedupe_ttl_ms, int(claim.late), int(wake), retry_at_ms, max_attempts,
                f"{claim.pid}:{claim.event_id}", record,
            ],
        )  # fmt: skip
        return _settled(reply)

    def release(self, claim: Claim, now_ms: int, *, not_before_ms: int = 0) -> bool:
        """Give a claimed pair back unrun (the attempt is not counted); False if the lease was lost already."""
        pk = keys.pair_keys(claim.shard, claim.pid)
        reply = self._run(
            "release",
            _pair(pk),
            [claim.pid, claim.token, now_ms, self.window_ms, self.grace_ms, self.dedupe_ttl_ms, not_before_ms],
        )
        return bool(reply)

    def renew(self, shard: int, pid: str, token: str, now_ms: int) -> bool:
        pk = keys.pair_keys(shard, pid)
        reply = self._run("renew", _pair(pk), [pid, token, now_ms, self.lease_ms])
        return bool(reply)

    def sweep_all(self, now_ms: int, limit: int = 500) -> list[tuple[int, str]]:
        """`sweep` over every shard in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(keys.SHARDS):
            self._scripts["sweep"](
                keys=[keys.due_key(shard)],
                args=[now_ms, self.grace_ms, limit, keys.shard_prefix(shard)],
                client=pipe,
            )
        replies = self._call(pipe.execute)
        return [(shard, _text(pid)) for shard, reply in enumerate(replies) for pid in reply]

    def queued_wakeups(self, queue_key: str) -> int:
        """How many wake-up messages wait in Dramatiq's queue (for the sweep's backpressure)."""
        return int(self._call(self.client.llen, queue_key))

    def heartbeat(self, worker: str, now_ms: int, info: dict[str, int] | None = None) -> None:
        """Say this worker is alive, with its counters (for `hookyard_workers_alive` and `hookyard stats`)."""
        self._run("heartbeat", [keys.WORKERS, keys.WORKER_INFO], [worker, now_ms, orjson.dumps(info) if info else ""])

    def keep_archive(self, source: str, event_id: str, ttl_ms: int) -> None:
        """Keep an event's archived bytes at least `ttl_ms` longer (a dead letter or skipped event needs them)."""
        self._run("keep_archive", [keys.event_keys(source, event_id).archive], [ttl_ms])

    def trim_letters(self, now_ms: int, limit: int = 500) -> dict[str, int]:
        """Drop dead and skipped records past their retention, or beyond the bound, oldest first, in every shard.

        Returns how many were dropped per `<kind>:<handler>` (also counted in the shard stats as `expired:…`).
        """
        pipe = self.client.pipeline(transaction=False)
        for shard in range(keys.SHARDS):
            dk = keys.DeadLetterKeys(shard)
            self._scripts["trim_letters"](
                keys=[dk.dead, dk.skipped, dk.records, keys.stats_key(shard)],
                args=[now_ms, self.letter_retention_ms, self.letter_limit_per_shard, limit],
                client=pipe,
            )
        dropped: dict[str, int] = {}
        for reply in self._call(pipe.execute):
            for i in range(0, len(reply), 2):
                name = _text(reply[i])
                dropped[name] = dropped.get(name, 0) + int(reply[i + 1])
        return dropped

    def archived(self, source: str, event_id: str) -> dict[str, bytes] | None:
        """The archive entry of an event (raw bytes and metadata), or None once retention dropped it."""
        found = self._call(self.client.hgetall, keys.event_keys(source, event_id).archive)
        if not found:
            return None
        return {_text(k): v for k, v in found.items()}

    def replay(self, shard: int, member: str, record: dict[str, Any], now_ms: int, *, from_dead: bool) -> bool:
        """Put a dead letter (or skipped late event) back in its handler's queue; True if it was there.

        Raises `ArchiveExpired` when the event's bytes are past retention (nothing is changed then).
        """
        pid, event_id = member.split(":", 1)
        archive = self.archived(record["source"], event_id)
        if archive is None:
            raise ArchiveExpired(f"event {event_id} is past retention: its bytes are gone")
        message = encode_message(
            QueuedEvent(
                source=archive["source"].decode(),
                event_id=event_id,
                event_type=archive["type"].decode(),
                signed_at_ms=int(archive["signed"]),
                received_at_ms=int(archive["received"]),
                raw=archive["raw"],
            )
        )
        pk = keys.pair_keys(shard, pid)
        dk = keys.DeadLetterKeys(shard)
        reply = self._run(
            "replay",
            [*_pair(pk), dk.dead if from_dead else dk.skipped, dk.records, pk.got_prefix + event_id],
            [
                pid, event_id, int(record["issued_at_ms"]), now_ms, self.window_ms, self.grace_ms, member,
                record["handler"], record["source"], record["ordering_key"], 0 if record.get("ordered", True) else 1,
                self.dedupe_ttl_ms, "dead" if from_dead else "skipped", message,
            ],
        )  # fmt: skip
        return int(reply[0]) == 1

    # -- plumbing -------------------------------------------------------------------------------------------

    def _run(self, name: str, script_keys: list[str], args: list[Any]) -> Any:
        return self._call(self._scripts[name], keys=script_keys, args=args)

    @staticmethod
    def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _OUTAGES as exc:
            raise StoreUnavailable(f"redis: {type(exc).__name__}: {exc}") from exc
        except redis.ResponseError as exc:
            # A script error is a bug; a server refusing writes for a reason redis-py has no class for is an
            # outage (redis-py strips the error code from the errors it maps to a class, hence the classes above).
            if _OUTAGE_CODES.search(str(exc)):
                raise StoreUnavailable(f"redis: {exc}") from exc
            raise


def _pair(pk: keys.PairKeys) -> list[str]:
    return [pk.pair, pk.queue, pk.state, pk.due, pk.stats, pk.body]


def _claim(shard: int, pid: str, token: str, reply: Any, sent_at: float) -> Claim | str:
    status = _text(reply[0])
    if status != "claimed":
        return status
    return Claim(
        shard=shard,
        pid=pid,
        token=token,
        event_id=_text(reply[1]),
        issued_at_ms=int(reply[2]),
        attempt=int(reply[3]),
        late=int(reply[4]) == 1,
        replay=int(reply[5]) == 1,
        received_at_ms=int(reply[6]),
        first_failure_ms=int(reply[7]),
        handler=_text(reply[8]),
        source=_text(reply[9]),
        ordering_key=_text(reply[10]),
        message=reply[11] if isinstance(reply[11], bytes) else str(reply[11]).encode(),
        suspect=int(reply[12]) == 1,
        sent_at=sent_at,
    )


def _settled(reply: Any) -> Settled:
    outcome = _text(reply[0])
    if outcome == "fenced":
        return Settled("fenced", -1, False)
    return Settled(outcome, int(reply[1]), int(reply[2]) == 1)
