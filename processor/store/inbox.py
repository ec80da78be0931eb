"""The inbox as the ingesters see it: per inbox shard, read a batch, hold that shard's ingest lease, trim what
was admitted; park what cannot be decoded; and the roll of live ingesters the shards are shared out among."""

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

    def read(self, limit: int, shard: int = 0) -> list[bytes]:
        return call(self.client.lrange, keys.inbox_keys(shard).queue, 0, limit - 1)  # type: ignore[no-any-return]

    def hold_lease(self, token: str, lease_ms: int, shard: int = 0) -> bool:
        return bool(self.scripts.run("inbox_lease", [keys.inbox_keys(shard).lease], [token, lease_ms]))

    def release_lease(self, token: str, shard: int = 0) -> None:
        """Give a shard's ingest lease up (on shutdown or to rebalance), so another ingester need not wait for it
        to lapse."""
        self.scripts.run("inbox_lease", [keys.inbox_keys(shard).lease], [token, 0])

    def ack(self, token: str, count: int, lease_ms: int, shard: int = 0) -> bool:
        """Trim the first `count` messages, if we still hold the lease (else another ingester admits them)."""
        ik = keys.inbox_keys(shard)
        return bool(self.scripts.run("inbox_ack", [ik.queue, ik.lease], [token, count, lease_ms]))

    def park_poison(self, message: bytes, reason: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.rpush(keys.INBOX_POISON, reason.encode() + b"\n" + message)
        pipe.ltrim(keys.INBOX_POISON, -POISON_LIMIT, -1)
        call(pipe.execute)

    def wait(self, timeout_s: float, client: redis.Redis, shard: int = 0) -> None:
        """Block until the receiver signals new messages or the timeout passes (on a dedicated connection)."""
        call(client.blpop, [keys.inbox_keys(shard).wake], timeout=timeout_s)

    def width(self) -> int:
        """How many inbox shards to drain: the most any receiver recorded, or more if a higher shard holds messages
        (the record is a hint a failover may take back; the lists themselves are the truth)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(keys.INBOX_WIDTH)
        for shard in range(keys.INBOX_SHARDS_MAX):
            pipe.exists(keys.inbox_keys(shard).queue)
        recorded, *present = call(pipe.execute)
        highest = max((shard + 1 for shard, there in enumerate(present) if there), default=0)
        return max(int(recorded or 0), highest)

    def depth(self) -> int:
        """Messages waiting in every inbox shard."""
        pipe = self.client.pipeline(transaction=False)
        for shard in range(keys.INBOX_SHARDS_MAX):
            pipe.llen(keys.inbox_keys(shard).queue)
        return sum(int(n) for n in call(pipe.execute))

    def widen(self, shards: int) -> int:
        """Record that a receiver writes to `shards` shards (the width only grows); returns the width."""
        return int(self.scripts.run("inbox_width", [keys.INBOX_WIDTH], [shards]))

    def announce(self, member: str, now_ms: int, ttl_ms: int) -> list[str]:
        """Say this ingester is alive; returns every ingester seen within `ttl_ms` (all in one slot)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(keys.INBOX_INGESTERS, {member: now_ms})
        pipe.zremrangebyscore(keys.INBOX_INGESTERS, "-inf", now_ms - ttl_ms)
        pipe.zrange(keys.INBOX_INGESTERS, 0, -1)
        *_, members = call(pipe.execute)
        return [m.decode() if isinstance(m, bytes) else str(m) for m in members]
