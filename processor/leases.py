"""Leases as this process sees them: when each of its runs stops being safe to start or continue.

Redis owns a lease (token + expiry, written by the claim); this process only knows when it *sent* the claim or the
last renewal. A lease is trusted locally until that send time plus the lease length minus a safety margin (for
clock skew between workers), measured on the monotonic clock, so a process that was paused (SIGSTOP, a VM pause,
a long GC) finds out on its own that its lease may have passed to another runner: it starts no handler call then.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from processor.records import Claim
from processor.store import Store
from shared.errors import StoreUnavailable
from shared.logging import get_logger
from shared.outage import OutageLog

__all__ = ["Lease", "LeaseKeeper"]

log = get_logger("hookyard.leases")


class Lease:
    """One claimed pair's lease, as far as this process can vouch for it."""

    __slots__ = ("claim", "lost", "valid_until")

    def __init__(self, claim: Claim, valid_until: float) -> None:
        self.claim = claim
        #: Monotonic time after which this process no longer vouches for the lease.
        self.valid_until = valid_until
        #: True once a renewal found the lease taken over, or the run gave it up (timeout). A plain flag: one
        #: writer sets it once, readers only need to see it eventually (cheaper than an Event per call).
        self.lost = False

    def alive(self, now: float | None = None) -> bool:
        """True while the lease is certainly still ours: not lost and not past its local deadline."""
        return not self.lost and (time.monotonic() if now is None else now) < self.valid_until


class LeaseKeeper:
    """Renews the leases of the calls this process is running, and only those: a pair that merely waits for a
    thread is never claimed, so it is never held."""

    def __init__(
        self, store: Store, clock_ms: Callable[[], int], lease_s: float, *, outage: OutageLog | None = None
    ) -> None:
        self.store = store
        self.outage = outage
        self.clock_ms = clock_ms
        self.lease_s = lease_s
        # Workers compare lease expiries with their own wall clocks: trust a lease a fifth less than its length,
        # which covers clock skew between machines up to that much (2 s at the default 30 s recovery timeout).
        self.margin_s = lease_s / 5
        self._held: dict[tuple[int, str], Lease] = {}
        self._lock = threading.Lock()

    def lease(self, claim: Claim) -> Lease:
        """The local view of a claim's lease: vouched for from when the claim was sent, for less than its length."""
        return Lease(claim, claim.sent_at + self.lease_s - self.margin_s)

    def hold(self, lease: Lease) -> None:
        with self._lock:
            self._held[(lease.claim.shard, lease.claim.pair_id)] = lease

    def release(self, lease: Lease) -> None:
        with self._lock:
            # Only our own hold: another thread may hold the same pair under a newer claim by now.
            if self._held.get((lease.claim.shard, lease.claim.pair_id)) is lease:
                del self._held[(lease.claim.shard, lease.claim.pair_id)]

    def held(self) -> list[Lease]:
        with self._lock:
            return list(self._held.values())

    def renew_all(self) -> int:
        """Renew every held lease once; returns how many are still ours."""
        kept = 0
        for lease in self.held():
            claim = lease.claim
            sent_at = time.monotonic()
            try:
                renewed = self.store.pairs.renew(claim.shard, claim.pair_id, claim.token, self.clock_ms())
            except StoreUnavailable as exc:
                # Not renewed: the local deadline keeps running out, and with it the right to go on.
                if self.outage is not None:
                    self.outage.failed("leases", exc)
                else:
                    log.warning("lease.renew_failed", shard=claim.shard, pair=claim.pair_id, error=str(exc)[:200])
                continue
            if renewed:
                lease.valid_until = max(lease.valid_until, sent_at + self.lease_s - self.margin_s)
                kept += 1
                continue
            with self._lock:
                still_held = self._held.get((claim.shard, claim.pair_id)) is lease
            # A run that completed between the snapshot and the renewal freed its lease itself.
            if still_held:
                lease.lost = True
                log.warning("lease.lost", shard=claim.shard, pair=claim.pair_id, event_id=claim.event_id)
        return kept
