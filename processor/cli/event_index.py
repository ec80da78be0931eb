"""Reading the event archive for `hookyard events list`: every shard's event index merged newest first, each entry's
archived fields, the filters an operator narrows them with, and following the index as events arrive."""

from __future__ import annotations

import fnmatch
import heapq
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import orjson
import redis

from processor.records import ArchivedEvent
from shared import keys

__all__ = [
    "FOLLOW_LOOKBACK_MS",
    "EventFilter",
    "Follower",
    "IndexedEvent",
    "Page",
    "StatusLookup",
    "follow",
    "merged_index",
    "newest",
    "page",
]

_FIELDS = ("source", "type", "received", "issued", "signed", "targets")
_PAGE = 200
#: `--follow` looks this far back for events indexed since its last look: ingest normally indexes an event well
#: within a second of its receipt; one indexed later than this (a long ingest backlog) is not shown.
FOLLOW_LOOKBACK_MS = 10_000

#: The status of an event with each handler it was routed to (`event_status.handler_statuses`, by handler).
StatusLookup = Callable[[ArchivedEvent], dict[str, str]]


@dataclass(frozen=True, slots=True)
class IndexedEvent:
    source: str
    event_id: str
    received_ms: int
    fields: dict[str, str]
    #: Each target handler's status, when a filter asked for it.
    statuses: dict[str, str] | None = None

    @property
    def handlers(self) -> list[str]:
        return [name for name in self.fields.get("targets", "").split(",") if name]


@dataclass(frozen=True, slots=True)
class EventFilter:
    """What `events list` narrows the archive to; every given criterion must hold."""

    source: str | None = None
    type_glob: str | None = None
    #: The event is about this object: its data's id, the id of an object it nests (a membership's user or group,
    #: a certificate's connection), or one of its `*_id` fields (directory_id, organization_id).
    resource: str | None = None
    #: Routed to this handler (with `status`: its status with this handler).
    handler: str | None = None
    #: pending, running, dead, skipped or done with `handler`, or with any of its handlers.
    status: str | None = None
    #: The event belongs to this organization (its data's `organization_id`).
    organization: str | None = None

    @property
    def needs_archive(self) -> bool:
        """Whether matching needs the whole archive entry (the body, the routes), not only the indexed fields."""
        return self.resource is not None or self.status is not None or self.organization is not None

    def matches_fields(self, source: str, fields: dict[str, str]) -> bool:
        if self.source is not None and source != self.source:
            return False
        if self.type_glob is not None and not fnmatch.fnmatchcase(fields.get("type", ""), self.type_glob):
            return False
        return self.handler is None or self.handler in fields.get("targets", "").split(",")

    def matches_archive(self, archived: ArchivedEvent, statuses: dict[str, str] | None) -> bool:
        if self.resource is not None and self.resource not in _resource_ids(archived.raw):
            return False
        if self.organization is not None and _organization_id(archived.raw) != self.organization:
            return False
        if self.status is None or statuses is None:
            return True
        if self.handler is not None:
            return statuses.get(self.handler) == self.status
        return self.status in statuses.values()


def newest(
    client: redis.Redis,
    wanted: EventFilter,
    *,
    since: int | None,
    until: int | None,
    limit: int,
    status_of: StatusLookup | None = None,
) -> list[IndexedEvent]:
    """Up to `limit` archived events that match, newest first."""
    return page(client, wanted, since=since, until=until, limit=limit, status_of=status_of).rows


@dataclass(frozen=True, slots=True)
class Page:
    """One page of `page`: the matching events, and where the next page starts."""

    rows: list[IndexedEvent]
    #: The last index entry looked at (received ms, `source:event_id`): pass it as `after` for the next page.
    #: None when the index has nothing more in range.
    next_after: tuple[int, str] | None


def page(
    client: redis.Redis,
    wanted: EventFilter,
    *,
    since: int | None,
    until: int | None,
    limit: int,
    after: tuple[int, str] | None = None,
    scan_limit: int | None = None,
    status_of: StatusLookup | None = None,
) -> Page:
    """Up to `limit` archived events that match, newest first, continuing after the index entry `after`.

    At most `scan_limit` index entries are looked at (a narrow filter over a large archive would otherwise read
    it all): the page may then hold fewer rows than `limit` and still have a next page.
    """
    if after is not None:
        until = after[0] if until is None else min(until, after[0])
    rows: list[IndexedEvent] = []
    # Index pages are read by offset while the receiver may add events at the top: an event can come round twice.
    seen: set[str] = set()
    scanned = 0
    last: tuple[int, str] | None = None
    exhausted = False
    # The newest `limit` (and one to know there are more) come from the first pages unless a filter drops some.
    candidates = merged_index(client, since, until, first=min(_PAGE, limit + 1))
    while len(rows) < limit:
        batch = []
        for member, received in candidates:
            # Entries at the cursor's millisecond come greatest member first: those up to the cursor were shown.
            if member in seen or (after is not None and received == after[0] and member >= after[1]):
                continue
            seen.add(member)
            scanned += 1
            last = (received, member)
            source = member.partition(":")[0]
            if wanted.source is None or source == wanted.source:
                batch.append((member, received))
            if len(batch) >= _PAGE or (scan_limit is not None and scanned >= scan_limit):
                break
        else:
            exhausted = True
        for row in _read(client, batch, wanted, status_of):
            rows.append(row)
            if len(rows) >= limit:
                return Page(rows, (row.received_ms, f"{row.source}:{row.event_id}"))
        if exhausted or (scan_limit is not None and scanned >= scan_limit):
            break
    return Page(rows, None if exhausted else last)


def follow(
    client: redis.Redis,
    wanted: EventFilter,
    *,
    clock_ms: Callable[[], int],
    pause: Callable[[], None],
    status_of: StatusLookup | None = None,
) -> Iterator[IndexedEvent]:
    """The events indexed from now on that match, oldest first within each look; `pause` runs between looks.

    Ends only when the caller stops iterating (Ctrl-C): what has been seen is remembered for the lookback.
    """
    follower = Follower(client, wanted, clock_ms, status_of)
    while True:
        pause()
        yield from follower.look()


class Follower:
    """Following the index from its creation on: each `look` returns the matching events indexed since the last
    one, oldest first (what was seen is remembered for `FOLLOW_LOOKBACK_MS`)."""

    def __init__(
        self,
        client: redis.Redis,
        wanted: EventFilter,
        clock_ms: Callable[[], int],
        status_of: StatusLookup | None = None,
    ) -> None:
        self.client = client
        self.wanted = wanted
        self.clock_ms = clock_ms
        self.status_of = status_of
        self.seen = dict(merged_index(client, clock_ms() - FOLLOW_LOOKBACK_MS, None))

    def look(self) -> list[IndexedEvent]:
        since = self.clock_ms() - FOLLOW_LOOKBACK_MS
        fresh = [(m, received) for m, received in merged_index(self.client, since, None) if m not in self.seen]
        self.seen.update(fresh)
        self.seen = {member: received for member, received in self.seen.items() if received >= since}
        fresh.sort(key=lambda entry: (entry[1], entry[0]))
        found: list[IndexedEvent] = []
        for start in range(0, len(fresh), _PAGE):
            found.extend(_read(self.client, fresh[start : start + _PAGE], self.wanted, self.status_of))
        return found


def merged_index(
    client: redis.Redis, since: int | None, until: int | None, *, first: int = _PAGE
) -> Iterator[tuple[str, int]]:
    """Every shard's event index merged newest first (`source:event_id`, received ms), a page per shard at a time.

    The first pages (`first` entries per shard, one round trip for all shards) can be small for a caller that
    wants only the newest few; later pages are `_PAGE` long.
    """
    low = "-inf" if since is None else since
    high = "+inf" if until is None else until
    offsets = dict.fromkeys(range(keys.SHARDS), 0)
    # The index key depends on the shard alone; shared/keys.py names it only through EventKeys.
    indexes = [keys.EventKeys(shard, "", "").index for shard in range(keys.SHARDS)]
    # Whether a shard's last page came back full: only then may it have more.
    more: dict[int, bool] = {}

    def took(shard: int, found: list[tuple[bytes, float]], asked: int) -> list[tuple[bytes, float]]:
        offsets[shard] += len(found)
        more[shard] = len(found) == asked
        return found[::-1]  # popped from the end: newest last

    def page(shard: int) -> list[tuple[bytes, float]]:
        found = cast(
            list[tuple[bytes, float]],
            client.zrevrangebyscore(indexes[shard], high, low, start=offsets[shard], num=_PAGE, withscores=True),
        )
        return took(shard, found, _PAGE)

    pipe = client.pipeline(transaction=False)
    for index in indexes:
        pipe.zrevrangebyscore(index, high, low, start=0, num=first, withscores=True)
    # Ties (one millisecond) come out as ZREVRANGEBYSCORE gives them within a shard: the greater member first.
    heap: list[tuple[float, _Descending, int]] = []
    buffers: dict[int, list[tuple[bytes, float]]] = {}
    for shard, found in enumerate(pipe.execute()):
        buffers[shard] = took(shard, found, first)
        if buffers[shard]:
            head, score = buffers[shard].pop()
            heapq.heappush(heap, (-score, _Descending(head.decode()), shard))
    while heap:
        negative_score, member, shard = heapq.heappop(heap)
        yield member.text, int(-negative_score)
        if not buffers[shard] and more[shard]:
            buffers[shard] = page(shard)
        if buffers[shard]:
            next_member, score = buffers[shard].pop()
            heapq.heappush(heap, (-score, _Descending(next_member.decode()), shard))


@dataclass(frozen=True, slots=True)
class _Descending:
    """A string that sorts backwards, for a min-heap that must yield the greater one first."""

    text: str

    def __lt__(self, other: _Descending) -> bool:
        return self.text > other.text


def _read(
    client: redis.Redis, batch: list[tuple[str, int]], wanted: EventFilter, status_of: StatusLookup | None
) -> Iterator[IndexedEvent]:
    pipe = client.pipeline(transaction=False)
    for member, _ in batch:
        source, _, event_id = member.partition(":")
        archive = keys.event_keys(source, event_id).archive
        if wanted.needs_archive:
            pipe.hgetall(archive)
        else:
            pipe.hmget(archive, _FIELDS)
    for (member, received), reply in zip(batch, pipe.execute(), strict=True):
        source, _, event_id = member.partition(":")
        fields, archived = _fields(event_id, reply)
        if fields is None:
            continue  # past retention: the archive entry expired before the index was trimmed
        if not wanted.matches_fields(source, fields):
            continue
        statuses = None
        if archived is not None:
            statuses = status_of(archived) if status_of is not None and wanted.status is not None else None
            if not wanted.matches_archive(archived, statuses):
                continue
        yield IndexedEvent(source, event_id, received, fields, statuses)


def _fields(event_id: str, reply: Any) -> tuple[dict[str, str] | None, ArchivedEvent | None]:
    if isinstance(reply, dict):  # HGETALL: the whole entry
        if not reply:
            return None, None
        named = {(k.decode() if isinstance(k, bytes) else k): v for k, v in reply.items()}
        fields = {name: named[name].decode() for name in _FIELDS if name in named}
        return fields, ArchivedEvent.decode(event_id, reply)
    if reply[0] is None:
        return None, None
    return {name: value.decode() for name, value in zip(_FIELDS, reply, strict=True) if value is not None}, None


def _data(raw: bytes) -> dict[str, Any] | None:
    try:
        envelope = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    data = envelope.get("data") if isinstance(envelope, dict) else None
    return data if isinstance(data, dict) else None


def _organization_id(raw: bytes) -> str | None:
    data = _data(raw)
    found = data.get("organization_id") if data is not None else None
    return found if isinstance(found, str) else None


def _resource_ids(raw: bytes) -> set[str]:
    data = _data(raw)
    if data is None:
        return set()
    found = {data.get("id")}
    for name, value in data.items():
        if isinstance(value, dict):
            found.add(value.get("id"))
        elif name.endswith("_id"):
            found.add(value)
    return {value for value in found if isinstance(value, str) and value}
