"""The processor's records, each with one encoder and one decoder: what the store returns (`Claim`, `Settled`,
`Admitted`), what it keeps (`PairState`, `DeadLetter`, `ArchivedEvent`) and how long (`StoreTimings`).

Scripts in shared/scripts write the same formats; each record names the script that writes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from processor.routing import Target, decode_routes
from shared.errors import WireFormatError
from shared.settings import Settings
from shared.wire import WEBHOOK, QueuedEvent, encode_message

__all__ = [
    "Admission",
    "Admitted",
    "ArchivedEvent",
    "Claim",
    "DeadLetter",
    "PairState",
    "Settled",
    "StoreTimings",
]


@dataclass(frozen=True, slots=True)
class StoreTimings:
    """Every duration the store's scripts use, in milliseconds, converted from the settings in one place."""

    window_ms: int
    grace_ms: int
    lease_ms: int
    dedupe_ttl_ms: int
    retention_ms: int
    letter_retention_ms: int = 30 * 86_400_000
    letter_limit: int = 100_000
    #: Replicas that must hold the writes a worker acts on (admissions before the inbox trim, a claim before
    #: its handler call): HOOKYARD_MIN_REPLICAS.
    min_replicas: int = 0

    @property
    def replica_wait_ms(self) -> int:
        """How long a worker waits for those replicas before it gives up (and tries again later)."""
        return max(100, min(self.lease_ms // 4, 5000))

    @classmethod
    def from_settings(cls, settings: Settings) -> StoreTimings:
        return cls.from_seconds(
            min_replicas=settings.min_replicas,
            window_s=settings.reorder_window_s,
            grace_s=settings.wake_grace_s,
            lease_s=settings.lease_s,
            dedupe_ttl_s=settings.dedupe_ttl_s,
            retention_s=settings.retention_s,
            letter_retention_s=settings.dead_letter_retention_s,
            letter_limit=settings.dead_letter_limit,
        )

    @classmethod
    def from_seconds(
        cls,
        *,
        window_s: float,
        grace_s: float,
        lease_s: float,
        dedupe_ttl_s: float,
        retention_s: float,
        letter_retention_s: float = 30 * 86400.0,
        letter_limit: int = 100_000,
        min_replicas: int = 0,
    ) -> StoreTimings:
        return cls(
            window_ms=int(window_s * 1000),
            grace_ms=int(grace_s * 1000),
            lease_ms=int(lease_s * 1000),
            dedupe_ttl_ms=int(dedupe_ttl_s * 1000),
            retention_ms=int(retention_s * 1000),
            letter_retention_ms=int(letter_retention_s * 1000),
            letter_limit=letter_limit,
            min_replicas=min_replicas,
        )

    @property
    def lease_s(self) -> float:
        return self.lease_ms / 1000

    def pair_header(self, now_ms: int) -> list[int]:
        """The fixed argument header of every pair script (`shared.scripts.PAIR_HEADER`, parsed by prelude.lua)."""
        return [now_ms, self.window_ms, self.grace_ms, self.dedupe_ttl_ms, self.lease_ms]


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
    channel: str = WEBHOOK  # which channel brought this arrival (shared.wire)


@dataclass(frozen=True, slots=True)
class Admitted:
    """What admitting a batch did: per event whether it was new and whether its body conflicted with the first
    arrival's, and the pairs to wake now."""

    fresh: list[bool]
    conflicts: list[bool]
    wake: list[tuple[int, str]]


@dataclass(frozen=True, slots=True)
class Claim:
    """The head event of a pair, leased to one runner (the reply of `try_claim` in prelude.lua)."""

    shard: int
    pair_id: str
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
    #: ... and that call was running alone: the event itself took its worker down.
    convicted: bool = False
    #: Attempts a replayed letter had before its replay (its calls go on counting from there).
    prior_attempts: int = 0
    #: Monotonic time the claim was sent: the lease is this process's from then for at most its length.
    sent_at: float = 0.0

    @classmethod
    def from_reply(cls, shard: int, pair_id: str, token: str, reply: Any, sent_at: float) -> Claim | str:
        """A claim, or why there is none: 'busy', 'empty' or 'not_due'."""
        status = _text(reply[0])
        if status != "claimed":
            return status
        return cls(
            shard=shard,
            pair_id=pair_id,
            token=token,
            event_id=_text(reply[1]),
            issued_at_ms=int(reply[2]),
            attempt=int(reply[3]),
            late=int(reply[4]) == 1,
            replay=int(reply[5]) > 0,
            received_at_ms=int(reply[6]),
            first_failure_ms=int(reply[7]),
            handler=_text(reply[8]),
            source=_text(reply[9]),
            ordering_key=_text(reply[10]),
            message=reply[11] if isinstance(reply[11], bytes) else str(reply[11]).encode(),
            suspect=int(reply[12]) == 1,
            convicted=int(reply[13]) == 1,
            prior_attempts=max(0, int(reply[5]) - 1),
            sent_at=sent_at,
        )


@dataclass(frozen=True, slots=True)
class Settled:
    """What a complete/fail call did: its outcome, when the pair is next due (-1: nothing pending), wake, and
    the pair's next event when `complete` was asked to claim it and it was runnable."""

    outcome: str
    next_due_ms: int
    wake: bool
    next_claim: Claim | None = None

    @classmethod
    def from_reply(cls, reply: Any) -> Settled:
        outcome = _text(reply[0])
        if outcome == "fenced":
            return cls("fenced", -1, False)
        return cls(outcome, int(reply[1]), int(reply[2]) == 1)


@dataclass(frozen=True, slots=True)
class PairState:
    """An event's delivery state in one pair (`{hy:N}:st:<pair id>`, written by `write_state` in prelude.lua):
    `received|not_before|attempts|first_failure|last_failure|replay`."""

    received_ms: int
    not_before_ms: int
    attempts: int
    first_failure_ms: int
    last_failure_ms: int
    replay: bool

    @classmethod
    def parse(cls, raw: bytes | str | None) -> PairState | None:
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else raw
        try:
            received, not_before, attempts, first, last, replay = (int(part) for part in text.split("|"))
        except ValueError:
            return None
        return cls(received, not_before, attempts, first, last, replay > 0)

    def runnable_at(self, window_ms: int) -> int:
        """When the event may run, as `runnable_at` in prelude.lua decides it (tests run both on the same cases):
        after the hold-back window (none for a replay) and after its retry backoff."""
        at = 0 if self.replay else self.received_ms + window_ms
        return max(at, self.not_before_ms)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Why an event was set aside by one handler: a dead letter, or a late event the handler skips."""

    event_id: str
    handler: str
    source: str
    ordering_key: str
    pair: str
    shard: int
    issued_at_ms: int
    error_type: str
    error_message: str
    attempts: int
    first_failure_ms: int
    last_failure_ms: int
    event_type: str = ""
    ordered: bool = True
    traceback: str = field(default="", repr=False)

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def decode(cls, raw: bytes | str) -> DeadLetter:
        """A stored record; raises `WireFormatError` when the bytes are not one."""
        try:
            data = orjson.loads(raw)
            return cls(
                event_id=str(data["event_id"]),
                handler=str(data["handler"]),
                source=str(data["source"]),
                ordering_key=str(data["ordering_key"]),
                pair=str(data["pair"]),
                shard=int(data["shard"]),
                issued_at_ms=int(data["issued_at_ms"]),
                error_type=str(data["error_type"]),
                error_message=str(data["error_message"]),
                attempts=int(data["attempts"]),
                first_failure_ms=int(data["first_failure_ms"]),
                last_failure_ms=int(data["last_failure_ms"]),
                event_type=str(data.get("event_type") or ""),
                ordered=bool(data.get("ordered", True)),
                traceback=str(data.get("traceback") or ""),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise WireFormatError(f"not a dead-letter record: {exc}") from None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    """An event's archive entry (`{hy:N}:ev:<source>:<id>`, written by admit_events.lua): its exact bytes, when it
    was signed, received and issued, and the routes its first arrival recorded."""

    source: str
    event_id: str
    event_type: str
    raw: bytes
    signed_at_ms: int
    received_at_ms: int
    issued_at_ms: int
    handlers: tuple[str, ...]
    routes: tuple[Target, ...] | None  # None for an entry written before routes were recorded

    @classmethod
    def decode(cls, event_id: str, fields: dict[bytes, bytes] | dict[str, bytes]) -> ArchivedEvent:
        got = {_text(k): v for k, v in fields.items()}
        source = got["source"].decode()
        routes: tuple[Target, ...] | None = None
        if got.get("routes"):
            try:
                routes = decode_routes(source, got["routes"])
            except ValueError:
                routes = None
        return cls(
            source=source,
            event_id=event_id,
            event_type=got.get("type", b"").decode(),
            raw=got["raw"],
            signed_at_ms=int(got.get("signed", b"0")),
            received_at_ms=int(got.get("received", b"0")),
            issued_at_ms=int(got.get("issued", b"0")),
            handlers=tuple(name for name in got.get("targets", b"").decode().split(",") if name),
            routes=routes,
        )

    def queued(self) -> QueuedEvent:
        """The event as the receiver queued it."""
        return QueuedEvent(
            source=self.source,
            event_id=self.event_id,
            event_type=self.event_type,
            signed_at_ms=self.signed_at_ms,
            received_at_ms=self.received_at_ms,
            raw=self.raw,
        )

    def message(self) -> bytes:
        """The queued message rebuilt from the archive (for a replay)."""
        return encode_message(self.queued())


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
