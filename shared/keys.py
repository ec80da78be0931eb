"""Every Redis key Hookyard writes, in one place.

Keys are grouped in shards by a hash tag (`{hy:N}`): all keys of one (source, ordering key) — the pair queues,
their state and the shard's due index — share a tag, so every atomic multi-key step touches one hash slot and the
state store can move to Redis Cluster. Each inbox shard (its list, wake hint and ingest lease) has a tag of its own,
so shards spread over a cluster's primaries; shard 0 keeps the single-inbox names (`{hy:inbox}`).
"""

from __future__ import annotations

import hashlib
import zlib

__all__ = [
    "CONSOLE_HISTORY",
    "INBOX",
    "INBOX_INGESTERS",
    "INBOX_LEASE",
    "INBOX_POISON",
    "INBOX_SHARDS_MAX",
    "INBOX_WAKE",
    "INBOX_WIDTH",
    "RECONCILE_CURSOR",
    "RECONCILE_LEASE",
    "RECONCILE_MISSED",
    "RECONCILE_NOT_BEFORE",
    "RECONCILE_READ",
    "RECONCILE_STATS",
    "SHARDS",
    "WAKE_NAMESPACE",
    "WAKE_QUEUE",
    "WAKE_QUEUE_NAME",
    "WORKERS",
    "WORKER_INFO",
    "DeadLetterKeys",
    "EventKeys",
    "InboxKeys",
    "PairKeys",
    "backlog_key",
    "console_sample_key",
    "due_key",
    "event_keys",
    "event_shard",
    "inbox_keys",
    "inbox_shard",
    "pair_id",
    "pair_keys",
    "pair_shard",
    "shard_prefix",
    "shard_tag",
    "stats_key",
]

#: Fixed forever: changing it would strand every key already written under the old sharding.
SHARDS = 16

INBOX = "{hy:inbox}:q"
INBOX_WAKE = "{hy:inbox}:wake"
INBOX_LEASE = "{hy:inbox}:lease"
INBOX_POISON = "{hy:inbox}:poison"  # messages that cannot be decoded, kept for inspection
#: The most inbox shards any receiver has written to (ingesters drain that many, whatever their own setting).
INBOX_WIDTH = "{hy:inbox}:width"
INBOX_INGESTERS = "{hy:inbox}:ingesters"  # zset "<role>:<host>:<pid>" -> last seen (ms): who shares the shards
INBOX_SHARDS_MAX = 64
# The Events API reconciler (`hookyard reconcile`, HOOKYARD_RECONCILE_INTERVAL): one leader at a time, its place
# in the API's event list, and the events whose first arrival came through the API rather than a webhook.
RECONCILE_LEASE = "{hy:reconcile}:lease"  # string: the leading reconciler's token, with expiry
RECONCILE_CURSOR = "{hy:reconcile}:cursor"  # hash: after (event id), position_ms, updated_ms, caught_up
RECONCILE_STATS = "{hy:reconcile}:stats"  # hash: missed:<source>, late_webhook:<source> counters
RECONCILE_MISSED = "{hy:reconcile}:missed"  # zset "<source>:<event id>" by admission time, trimmed by count
RECONCILE_NOT_BEFORE = "{hy:reconcile}:not_before"  # string: ms before which no reconciler calls the API (backoff)
RECONCILE_READ = "{hy:reconcile}:read"  # zset "<source>:<event id>" by created ms: read in the re-read overlap
WORKERS = "{hy:workers}"  # zset "<host>:<pid>" -> last heartbeat (ms), written by every worker's sweep
# Dramatiq's Redis broker keeps the wake-up queue under its namespace: the list of message ids it holds.
WAKE_NAMESPACE = "hookyard-dramatiq"
WAKE_QUEUE_NAME = "hookyard"
WAKE_QUEUE = f"{WAKE_NAMESPACE}:{WAKE_QUEUE_NAME}"
WORKER_INFO = "{hy:workers}:info"  # hash "<host>:<pid>" -> JSON counters the worker publishes with its heartbeat


class InboxKeys:
    """Keys of one inbox shard: the list the receiver appends to, its wake hint and its ingest lease."""

    __slots__ = ("lease", "queue", "shard", "wake")

    def __init__(self, shard: int) -> None:
        tag = "{hy:inbox}" if shard == 0 else f"{{hy:inbox:{shard}}}"
        self.shard = shard
        self.queue = f"{tag}:q"
        self.wake = f"{tag}:wake"
        self.lease = f"{tag}:lease"


def inbox_shard(source: str, event_id: str, shards: int) -> int:
    """The inbox shard every copy of one event goes to (webhook redeliveries and Events API copies alike): copies
    of one event id stay in one list, in the order they were received, so the first received is the first admitted
    (its body is the one that stands)."""
    return zlib.crc32(f"{source}\x00{event_id}".encode()) % shards


def inbox_keys(shard: int) -> InboxKeys:
    if not 0 <= shard < INBOX_SHARDS_MAX:
        raise ValueError(f"inbox shard {shard} out of range")
    return InboxKeys(shard)


def shard_tag(shard: int) -> str:
    return f"{{hy:{shard}}}"


def _shard(*parts: str) -> int:
    return zlib.crc32("\x00".join(parts).encode()) % SHARDS


def event_shard(source: str, event_id: str) -> int:
    return _shard(source, event_id)


def pair_shard(source: str, ordering_key: str) -> int:
    return _shard(source, ordering_key)


def pair_id(handler: str, source: str, ordering_key: str) -> str:
    """A short stable id for one (handler, source, ordering key): safe in key names whatever the key holds."""
    digest = hashlib.blake2b("\x00".join((handler, source, ordering_key)).encode(), digest_size=10)
    return digest.hexdigest()


class EventKeys:
    """Keys of one received event (in its event shard)."""

    __slots__ = ("archive", "index", "seen", "shard")

    def __init__(self, shard: int, source: str, event_id: str) -> None:
        tag = shard_tag(shard)
        self.shard = shard
        self.seen = f"{tag}:seen:{source}:{event_id}"  # dedupe marker, TTL = dedupe window
        self.archive = f"{tag}:ev:{source}:{event_id}"  # hash: raw bytes + metadata, TTL = retention
        self.index = f"{tag}:events"  # zset "<source>:<event id>" by received time


def event_keys(source: str, event_id: str) -> EventKeys:
    return EventKeys(event_shard(source, event_id), source, event_id)


class PairKeys:
    """Keys of one (handler, source, ordering key) and of the shard it lives in."""

    __slots__ = ("body", "due", "got_prefix", "pair", "queue", "shard", "state", "stats")

    def __init__(self, shard: int, pid: str) -> None:
        tag = shard_tag(shard)
        self.shard = shard
        self.pair = f"{tag}:pair:{pid}"  # hash: handler, source, key, lease token/expiry, last delivered
        self.queue = f"{tag}:q:{pid}"  # zset of event ids by issued time (ties by id)
        self.state = f"{tag}:st:{pid}"  # hash event id -> delivery state of that event for this handler
        self.body = f"{tag}:body:{pid}"  # hash event id -> the queued message, while the event is pending
        self.got_prefix = f"{tag}:got:{pid}:"  # + event id: "admitted once" marker, TTL = dedupe window
        self.due = due_key(shard)  # zset pair id -> when it next needs a runner
        self.stats = stats_key(shard)  # hash pending:<handler>, dead:<handler>, skipped:<handler> counters


def shard_prefix(shard: int) -> str:
    return shard_tag(shard) + ":"


def backlog_key(shard: int, handler: str) -> str:
    """Zset of a handler's pairs with pending work in a shard, scored by their head event's arrival time."""
    return f"{shard_tag(shard)}:stats:backlog:{handler}"


def due_key(shard: int) -> str:
    return f"{shard_tag(shard)}:due"


def stats_key(shard: int) -> str:
    return f"{shard_tag(shard)}:stats"


def pair_keys(shard: int, pid: str) -> PairKeys:
    return PairKeys(shard, pid)


class DeadLetterKeys:
    """Keys of a shard's dead letters and late events skipped by their handler."""

    __slots__ = ("dead", "records", "skipped")

    def __init__(self, shard: int) -> None:
        tag = shard_tag(shard)
        self.dead = f"{tag}:dead"  # zset "<pair id>:<event id>" by time of death
        self.skipped = f"{tag}:skipped"  # zset "<pair id>:<event id>" by time skipped
        self.records = f"{tag}:records"  # hash "<pair id>:<event id>" -> JSON record


#: The console's per-interval history of run counters, lag histograms and backlog (a list, newest first, bounded),
#: and the marker that lets only one console record each interval.
CONSOLE_HISTORY = "{hy:console}:history"


def console_sample_key(slot: int) -> str:
    return f"{{hy:console}}:sampled:{slot}"
