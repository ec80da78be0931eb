"""The inbox as the ingester sees it: read a batch, hold the single ingest lease, trim what was admitted, and
park what cannot be decoded."""

from __future__ import annotations

import redis

from processor.store.calls import Scripts, call
from shared import keys

__all__ = ["POISON_LIMIT", "Inbox"]

#: The poison list keeps this many of the newest undecodable messages (it only grows on corruption or a bug).
POISON_LIMIT = 10_000


class Inbox:
    def __init__(self, client: redis.Redis, scripts: Scripts) -> None:
        self.client = client
        self.scripts = scripts

    def read(self, limit: int) -> list[bytes]:
        return call(self.client.lrange, keys.INBOX, 0, limit - 1)  # type: ignore[no-any-return]

    def hold_lease(self, token: str, lease_ms: int) -> bool:
        return bool(self.scripts.run("inbox_lease", [keys.INBOX_LEASE], [token, lease_ms]))

    def release_lease(self, token: str) -> None:
        """Give the ingest lease up (on shutdown), so another ingester need not wait for it to lapse."""
        self.scripts.run("inbox_lease", [keys.INBOX_LEASE], [token, 0])

    def ack(self, token: str, count: int, lease_ms: int) -> bool:
        """Trim the first `count` messages, if we still hold the lease (else another ingester admits them)."""
        return bool(self.scripts.run("inbox_ack", [keys.INBOX, keys.INBOX_LEASE], [token, count, lease_ms]))

    def park_poison(self, message: bytes, reason: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.rpush(keys.INBOX_POISON, reason.encode() + b"\n" + message)
        pipe.ltrim(keys.INBOX_POISON, -POISON_LIMIT, -1)
        call(pipe.execute)

    def wait(self, timeout_s: float, client: redis.Redis) -> None:
        """Block until the receiver signals new messages or the timeout passes (on a dedicated connection)."""
        call(client.blpop, [keys.INBOX_WAKE], timeout=timeout_s)
