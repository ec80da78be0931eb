"""Ingest: move accepted deliveries from the receiver's inbox into the handlers' queues.

One worker at a time holds the ingest lease (a crashed holder's lease expires and another takes over). It reads
a batch from the head of the inbox, admits every event (idempotent per event and per handler), and only then
trims the batch off the inbox, fenced by its lease: a crash at any point re-admits, which changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from processor.decode import event_from_queued
from processor.handlers import Registry
from processor.metrics import WorkerMetrics
from processor.store import Admission, Store, Target
from shared import keys
from shared.errors import EnvelopeError, WireFormatError
from shared.logging import get_logger
from shared.wire import decode_message

__all__ = ["IngestResult", "Ingester"]

log = get_logger("hookyard.ingest")


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
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock_ms = clock_ms
        self.metrics = metrics
        self.batch_size = batch_size
        self.lease_ms = lease_ms
        self.token = uuid.uuid4().hex

    def holds_lease(self) -> bool:
        return self.store.hold_ingest_lease(self.token, self.lease_ms)

    def ingest_once(self) -> IngestResult | None:
        """Admit one batch if we hold the lease; None when another worker is the ingester."""
        if not self.holds_lease():
            return None
        messages = self.store.read_inbox(self.batch_size)
        if not messages:
            return IngestResult(0, 0, 0, 0, [])
        batch, poison = self._prepare(messages)
        now = self.clock_ms()
        fresh, wake = self.store.admit(batch, now) if batch else ([], [])
        if not self.store.ack_inbox(self.token, len(messages), self.lease_ms):
            # Another ingester took over while we worked: it admits the same messages (idempotently) and trims.
            log.warning("ingest.lease_lost", batch=len(messages))
            return IngestResult(len(messages), 0, 0, 0, wake)
        new = sum(fresh)
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
                self.store.park_poison(message, f"{type(exc).__name__}: {exc}")
                log.error("ingest.poison", error=type(exc).__name__, reason=str(exc)[:200])
                poison += 1
                continue
            targets = []
            for spec in self.registry.matching(event.type):
                try:
                    okey = spec.ordering_key(event)
                except Exception as exc:  # noqa: BLE001 - a user key function must not stop ingestion
                    log.error("ordering_key.failed", handler=spec.name, event_id=event.id, error=repr(exc)[:200])
                    okey = f"event:{event.id}"
                if not isinstance(okey, str):
                    okey = str(okey)
                shard = keys.pair_shard(queued.source, okey)
                targets.append(
                    Target(spec.name, okey, spec.ordered, shard, keys.pair_id(spec.name, queued.source, okey))
                )
            batch.append(
                Admission(
                    source=queued.source,
                    event_id=event.id,
                    event_type=event.type,
                    raw=queued.raw,
                    signed_at_ms=queued.signed_at_ms,
                    received_at_ms=queued.received_at_ms,
                    issued_at_ms=issued_ms,
                    targets=tuple(targets),
                    message=message,
                )
            )
        return batch, poison
