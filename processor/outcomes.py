"""How a run ends, recorded: a failed attempt (retried with backoff, or a dead letter after the last one), and
the dead-letter record itself, whose archived bytes are kept as long as the letter.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from processor.handlers import HandlerSpec
from processor.metrics import WorkerMetrics
from processor.records import Claim, DeadLetter, Settled
from processor.store import Store
from shared.logging import get_logger

__all__ = ["Outcomes", "backoff_s"]

log = get_logger("hookyard.runner")

_MAX_TRACEBACK = 8192
_MAX_MESSAGE = 1024
# Letters are trimmed by the sweep every 30 s: the bytes a letter needs outlive it by more than that.
_ARCHIVE_MARGIN_MS = 120_000


def backoff_s(attempt: int, min_s: float, max_s: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: about min * 2^(attempt-1), jittered down by up to half, within [min, max]."""
    ceiling = min(max_s, min_s * (2 ** max(0, attempt - 1)))
    return float(max(min_s, ceiling * rng.uniform(0.5, 1.0)))


class Outcomes:
    """Records failed attempts and builds dead letters, counting every outcome in the metrics."""

    def __init__(
        self,
        store: Store,
        *,
        clock_ms: Callable[[], int],
        metrics: WorkerMetrics | None,
        rng: random.Random,
        letter_retention_ms: int,
    ) -> None:
        self.store = store
        self.clock_ms = clock_ms
        self.metrics = metrics
        self.rng = rng
        self.letter_retention_ms = letter_retention_ms

    def keep_archive_for_letter(self, claim: Claim) -> None:
        """The event may become a letter: its bytes must outlive the event's own retention."""
        self.store.archive.keep(claim.source, claim.event_id, self.letter_retention_ms + _ARCHIVE_MARGIN_MS)

    def fail(
        self,
        claim: Claim,
        spec: HandlerSpec | None,
        error_type: str,
        message: str,
        trace: str,
        *,
        retry_in_s: float | None,
        wake: bool,
        final: bool = False,
        event_type: str = "",
    ) -> Settled:
        now = self.clock_ms()
        name = spec.name if spec is not None else claim.handler
        max_attempts = 0 if final else (spec.max_attempts if spec is not None else 8)
        if retry_in_s is None:
            assert spec is not None
            retry_in_s = backoff_s(claim.attempt, spec.min_backoff_s, spec.max_backoff_s, self.rng)
        letter = self.letter(claim, spec, event_type, error_type, message, trace, now=now)
        if max_attempts == 0 or claim.attempt - claim.prior_attempts >= max_attempts:
            self.keep_archive_for_letter(claim)  # this attempt may make a dead letter
        settled = self.store.pairs.fail(
            claim,
            now,
            retry_at_ms=now + int(retry_in_s * 1000),
            max_attempts=max_attempts,
            letter=letter,
            wake=wake,
        )
        self.count(name, settled.outcome)
        fields = {
            "handler": name,
            "event_id": claim.event_id,
            "attempt": claim.attempt,
            "error": error_type,
            "outcome": settled.outcome,
        }
        if settled.outcome == "dead":
            log.error("run.dead_letter", **fields, message=message[:200])
        elif settled.outcome == "retry":
            log.info("run.retry", **fields, message=message[:200], retry_in_s=round(retry_in_s, 3))
        else:
            log.warning("run.fenced", **fields)
        return settled

    def letter(
        self,
        claim: Claim,
        spec: HandlerSpec | None,
        event_type: str,
        error_type: str,
        message: str,
        trace: str,
        *,
        now: int | None = None,
    ) -> DeadLetter:
        now = now if now is not None else self.clock_ms()
        return DeadLetter(
            event_id=claim.event_id,
            event_type=event_type,
            handler=claim.handler,
            source=claim.source,
            ordering_key=claim.ordering_key,
            ordered=spec.ordered if spec is not None else True,
            shard=claim.shard,
            pair=claim.pair_id,
            issued_at_ms=claim.issued_at_ms,
            error_type=error_type,
            error_message=message[:_MAX_MESSAGE],
            traceback=trace[-_MAX_TRACEBACK:],
            attempts=claim.attempt,
            first_failure_ms=claim.first_failure_ms or now,
            last_failure_ms=now,
        )

    def count(self, handler: str, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.count_run(handler, outcome)
