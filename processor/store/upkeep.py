"""What every worker does in the background besides running pairs: sweep for due or orphaned pairs, say it is
alive, and drop letters past their retention or beyond their limit."""

from __future__ import annotations

import orjson
import redis

from processor.records import StoreTimings
from processor.store.calls import Scripts, call
from shared import keys

__all__ = ["Upkeep"]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Upkeep:
    def __init__(self, client: redis.Redis, scripts: Scripts, timings: StoreTimings) -> None:
        self.client = client
        self.scripts = scripts
        self.timings = timings

    def sweep(self, now_ms: int, limit: int = 500) -> list[tuple[int, str]]:
        """Reserve a wake-up for every pair that is due or whose runner's lease ran out, in every shard (one round
        trip); returns the (shard, pair id) items to wake."""
        calls = self.scripts.batch()
        for shard in range(keys.SHARDS):
            args = [now_ms, self.timings.grace_ms, limit, keys.shard_prefix(shard)]
            calls.add("sweep", [keys.due_key(shard)], args)
        replies = calls.run()
        return [(shard, _text(pair_id)) for shard, reply in enumerate(replies) for pair_id in reply]

    def heartbeat(self, worker: str, now_ms: int, info: dict[str, object] | None = None) -> None:
        """Say this worker is alive, with its counters (for `hookyard_workers_alive` and `hookyard stats`)."""
        args = [worker, now_ms, orjson.dumps(info) if info else ""]
        self.scripts.run("heartbeat", [keys.WORKERS, keys.WORKER_INFO], args)

    def trim_letters(self, now_ms: int, limit: int = 500) -> dict[str, int]:
        """Drop dead and skipped records past their retention, then the oldest beyond the limit across all shards.

        Returns how many were dropped per `<kind>:<handler>` (also counted in the shard stats as `expired:…`).
        """
        dropped: dict[str, int] = {}
        left = self._trim(now_ms, limit, {}, dropped)
        # The limit holds across shards (a hot key keeps all its letters in one): drop the globally oldest.
        victims: dict[int, list[str]] = {}
        for kind, total in (("dead", sum(c["dead"] for c in left)), ("skipped", sum(c["skipped"] for c in left))):
            over = min(total - self.timings.letter_limit, limit)
            if over <= 0:
                continue
            pipe = self.client.pipeline(transaction=False)
            for shard in range(keys.SHARDS):
                dk = keys.DeadLetterKeys(shard)
                pipe.zrange(dk.dead if kind == "dead" else dk.skipped, 0, over - 1, withscores=True)
            oldest = sorted(
                (score, shard, _text(member)) for shard, rows in enumerate(call(pipe.execute)) for member, score in rows
            )[:over]
            for _, shard, member in oldest:
                victims.setdefault(shard, []).append(f"{kind}|{member}")
        if victims:
            self._trim(now_ms, limit, victims, dropped)
        return dropped

    def _trim(
        self, now_ms: int, limit: int, victims: dict[int, list[str]], dropped: dict[str, int]
    ) -> list[dict[str, int]]:
        calls = self.scripts.batch()
        for shard in range(keys.SHARDS):
            dk = keys.DeadLetterKeys(shard)
            args = [now_ms, self.timings.letter_retention_ms, limit, *victims.get(shard, [])]
            calls.add("trim_letters", [dk.dead, dk.skipped, dk.records, keys.stats_key(shard)], args)
        left: list[dict[str, int]] = []
        for reply in calls.run():
            counts: dict[str, int] = {}
            for i in range(0, len(reply), 2):
                name, n = _text(reply[i]), int(reply[i + 1])
                if name.startswith("="):
                    counts[name[1:]] = n
                else:
                    dropped[name] = dropped.get(name, 0) + n
            left.append(counts)
        return left
