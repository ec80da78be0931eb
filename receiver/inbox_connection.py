"""The inbox writer's own Redis connection and its one command: append a batch (shared/scripts/inbox_append.lua).

The writer sends one batch at a time, so it holds one connection of the client's pool for its whole life and
sends a command it packed itself (hiredis), skipping redis-py's per-command layers (pool checkout and return,
retry wrapper, observability hooks, the Python packer): that halves the receiver's CPU per batch written. A
command that fails or is cancelled leaves redis-py's connection disconnected, so the next one starts afresh.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import NoScriptError

from shared import scripts
from shared.keys import INBOX, INBOX_WAKE

__all__ = ["InboxConnection"]

_KEYS: Final = (INBOX, INBOX_WAKE)


class InboxConnection:
    """Runs the append script on a connection taken from `redis`'s pool on first use and given back by `close`."""

    def __init__(self, redis: Redis) -> None:
        self._pool = redis.connection_pool
        self._connection: AbstractConnection | None = None
        self._source = scripts.source("inbox_append").encode()
        self._sha = hashlib.sha1(self._source, usedforsecurity=False).hexdigest().encode()  # Redis names it so

    async def append(self, messages: Sequence[bytes]) -> None:
        """Append `messages` to the inbox and leave the wake hint; returns once Redis has replied.

        Raises what redis-py raises: `ConnectionError`/`TimeoutError` for the link, `ResponseError` for a refusal
        (out of memory, a read-only replica).
        """
        connection = self._connection
        if connection is None:
            connection = self._connection = await self._pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            await _run(connection, b"EVALSHA", self._sha, messages)
        except NoScriptError:
            # Redis restarted or its scripts were flushed, so nothing ran: EVAL runs the script and caches it again.
            await _run(connection, b"EVAL", self._source, messages)

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._pool.release(connection)


async def _run(connection: AbstractConnection, command: bytes, script: bytes, messages: Sequence[bytes]) -> None:
    # hiredis's stub declares a 1-tuple; the function packs a tuple of any length.
    packed = hiredis.pack_command((command, script, len(_KEYS), *_KEYS, *messages))  # type: ignore[arg-type]
    await connection.send_packed_command(packed)
    await connection.read_response()
