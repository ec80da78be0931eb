"""Ingest: move accepted deliveries from the receiver's inbox into the handlers' queues.

One worker at a time holds the ingest lease (a crashed holder's lease expires and another takes over). It reads
a batch from the head of the inbox, admits every event (idempotent per event and per handler), and only then
trims the batch off the inbox, fenced by its lease: a crash at any point re-admits, which changes nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from processor.decode import bound_issued_ms, event_from_queued
from processor.handlers import Registry
from processor.metrics import WorkerMetrics
from processor.reconcile.arrivals import note_arrivals
from processor.reconcile.state import ReconcileState
from processor.records import Admission
from processor.routing import route
from processor.store import Store
from shared.errors import EnvelopeError, WireFormatError
from shared.logging import get_logger
from shared.wire import decode_message

__all__ = ["IngestResult", "Ingester"]

log = get_logger("hookyard.ingest")

_DEFAULT_TOLERANCE_MS = 180_000


@dataclass(frozen=True, slots=True)
class IngestResult:
    read: int
    new: int
    duplicates: int
    poison: int
    wake: list[tuple[int, str]]


class Ingester:
    """Admits inbox batches while holding the ingest lease."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        *,
        clock_ms: Callable[[], int],
        metrics: WorkerMetrics | None = None,
        batch_size: int = 500,
        lease_ms: int = 5000,
        future_tolerance_ms: Mapping[str, int] | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock_ms = clock_ms
        self.metrics = metrics
        self.batch_size = batch_size
        self.lease_ms = lease_ms
        # How far ahead of its receipt an event's `created_at` may be, per source (its signature tolerance).
        self.future_tolerance_ms = dict(future_tolerance_ms or {})
        self.token = uuid.uuid4().hex
        self.arrivals = ReconcileState(store.client)

    def ingest_once(self, shard: int = 0) -> IngestResult | None:
        """Admit one batch of an inbox shard if we hold its lease; None when another ingester holds it."""
        if not self.store.inbox.hold_lease(self.token, self.lease_ms, shard):
            return None
        messages = self.store.inbox.read(self.batch_size, shard)
        if not messages:
            return IngestResult(0, 0, 0, 0, [])
        batch, poison = self._prepare(messages)
        now = self.clock_ms()
        admitted = self.store.pairs.admit(batch, now) if batch else None
        fresh = admitted.fresh if admitted is not None else []
        wake = admitted.wake if admitted is not None else []
        if not self.store.inbox.ack(self.token, len(messages), self.lease_ms, shard):
            # Another ingester took over while we worked: it admits the same messages (idempotently) and trims.
            log.warning("ingest.lease_lost", batch=len(messages))
            return IngestResult(len(messages), 0, 0, 0, wake)
        new = sum(fresh)
        # An arrival through the other channel (webhook vs Events API) has other bytes: expected, not a conflict.
        expected = note_arrivals(self.arrivals, batch, fresh, admitted.conflicts, now, self.metrics) if admitted else []
        if admitted is not None and any(admitted.conflicts):
            for item, conflict, cross_channel in zip(batch, admitted.conflicts, expected, strict=True):
                if conflict and not cross_channel:
                    # Same event id, other bytes: the first arrival stands (dedupe is by id); worth a look.
                    log.warning("ingest.body_conflict", source=item.source, event_id=item.event_id,
                                event_type=item.event_type)  # fmt: skip
                    if self.metrics is not None:
                        self.metrics.conflicts.labels(item.source).inc()
        if self.metrics is not None:
            for item, is_new in zip(batch, fresh, strict=True):
                self.metrics.ingested.labels(item.source, "new" if is_new else "duplicate").inc()
        for item, is_new in zip(batch, fresh, strict=True):
            log.debug(
                "event.ingested",
                source=item.source,
                event_id=item.event_id,
                event_type=item.event_type,
                outcome="new" if is_new else "duplicate",
                handlers=len(item.targets),
            )
        return IngestResult(len(messages), new, len(fresh) - new, poison, wake)

    def _prepare(self, messages: Sequence[bytes]) -> tuple[list[Admission], int]:
        batch: list[Admission] = []
        poison = 0
        for message in messages:
            try:
                queued = decode_message(message)
                event, issued_ms = event_from_queued(queued)
            except (WireFormatError, EnvelopeError) as exc:
                # The receiver only enqueues verified, parsed events, so this is corruption or a version skew:
                # park the bytes for inspection rather than lose or loop on them.
                self.store.inbox.park_poison(message, f"{type(exc).__name__}: {exc}")
                log.error("ingest.poison", error=type(exc).__name__, reason=str(exc)[:200])
                poison += 1
                continue
            issued_ms_bounded = bound_issued_ms(
                issued_ms, queued.received_at_ms, self.future_tolerance_ms.get(queued.source, _DEFAULT_TOLERANCE_MS)
            )
            if issued_ms_bounded != issued_ms:
                log.warning("ingest.issued_in_future", source=queued.source, event_id=event.id,
                            ahead_s=round((issued_ms - queued.received_at_ms) / 1000, 1))  # fmt: skip
                if self.metrics is not None:
                    self.metrics.future_issued.labels(queued.source).inc()
                issued_ms = issued_ms_bounded
            targets = route(self.registry.matching(event.type), event)
            batch.append(
                Admission(
                    source=queued.source,
                    event_id=event.id,
                    event_type=event.type,
                    raw=queued.raw,
                    signed_at_ms=queued.signed_at_ms,
                    received_at_ms=queued.received_at_ms,
                    issued_at_ms=issued_ms,
                    targets=targets,
                    message=message,
                    digest=hashlib.blake2b(queued.raw, digest_size=12).hexdigest(),
                    channel=queued.channel,
                )
            )
        return batch, poison
