"""Liveness (`/healthz`) and readiness (`/readyz`) of the receiver.

Liveness does no I/O: it says the process can answer. Readiness pings Redis, because a receiver that cannot
store answers every delivery 503 (and, with HOOKYARD_MIN_REPLICAS, checks every primary has the replicas each
append waits for); it also warns when Redis is configured to lose accepted events (no AOF, or
an eviction policy), which it reads with CONFIG GET at most every `CONFIG_CACHE_S`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Final

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError
from starlette.types import Receive, Scope, Send

from receiver.json_response import dump_json, send_json
from receiver.state import ReceiverState
from shared.durability import APPENDONLY, CONFIG_NAMES, MAXMEMORY_POLICY, Setting, assess_durability
from shared.logging import get_logger

__all__ = [
    "CONFIG_CACHE_S",
    "PING_TIMEOUT_S",
    "WARN_APPENDONLY_OFF",
    "WARN_CONFIG_UNREADABLE",
    "WARN_EVICTION",
    "Liveness",
    "Readiness",
    "ReadinessReport",
    "RedisConfigCheck",
]

PING_TIMEOUT_S: Final = 1.0
CONFIG_CACHE_S: Final = 30.0

WARN_APPENDONLY_OFF: Final = "redis persistence (appendonly) is off: accepted events can be lost on restart"
WARN_EVICTION: Final = "redis maxmemory-policy is not noeviction: accepted events can be evicted"
WARN_CONFIG_UNREADABLE: Final = "cannot read redis config"
_WARNINGS: Final[dict[Setting, str]] = {APPENDONLY: WARN_APPENDONLY_OFF, MAXMEMORY_POLICY: WARN_EVICTION}

_ALIVE = dump_json({"status": "ok"})
# A logger is fetched where it is used: one bound at import would keep the logging setup of import time.
_LOGGER = "hookyard.receiver.health"


class Liveness:
    """`GET /healthz`: 200 while the event loop runs."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_json(send, 200, _ALIVE)


class RedisConfigCheck:
    """Warnings about Redis settings that break durability, cached because CONFIG GET is not free."""

    def __init__(self, *, cache_s: float = CONFIG_CACHE_S) -> None:
        self._cache_s = cache_s
        self._warnings: list[str] = []
        self._checked_at: float | None = None

    async def warnings(self, redis: Redis) -> list[str]:
        now = time.monotonic()
        if self._checked_at is None or now - self._checked_at >= self._cache_s:
            self._warnings = await self._read(redis)
            self._checked_at = now
        return list(self._warnings)

    async def _read(self, redis: Redis) -> list[str]:
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                replies = [await redis.config_get(name) for name in CONFIG_NAMES]
        except (RedisError, OSError, TimeoutError):
            # Managed Redis often disables or renames CONFIG; durability is then the operator's to vouch for.
            return [WARN_CONFIG_UNREADABLE]
        durability = assess_durability(replies)
        if not all(finding.known for finding in durability):
            return [WARN_CONFIG_UNREADABLE]
        return [_WARNINGS[finding.setting] for finding in durability if not finding.durable]


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    """Whether the receiver can store deliveries now; `redis` is ok, unreachable or not_started."""

    ready: bool
    redis: str
    warnings: list[str] = field(default_factory=list)

    @property
    def status_code(self) -> int:
        return 200 if self.ready else 503

    def to_json(self) -> bytes:
        status = "ready" if self.ready else "unavailable"
        return dump_json({"status": status, "redis": self.redis, "warnings": self.warnings})


class Readiness:
    """`GET /readyz`: 200 when Redis answers a PING, with durability warnings; 503 otherwise."""

    def __init__(self, state: ReceiverState, config_check: RedisConfigCheck | None = None) -> None:
        self._state = state
        self._config_check = config_check or RedisConfigCheck()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        report = await self.check()
        await send_json(send, report.status_code, report.to_json())

    async def check(self) -> ReadinessReport:
        """Ping Redis and collect durability warnings (also logged once at startup)."""
        redis = self._state.redis
        if redis is None:
            return ReadinessReport(ready=False, redis="not_started")
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                await redis.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            get_logger(_LOGGER).debug("readiness.ping_failed", error=type(exc).__name__)
            return ReadinessReport(ready=False, redis="unreachable")
        wanted = self._state.settings.min_replicas
        if wanted and (have := await fewest_replicas(redis)) < wanted:
            # Every append would be refused (503) for want of replicas to confirm it: not ready, and say why.
            return ReadinessReport(ready=False, redis=f"replicas: {have} of {wanted} required")
        return ReadinessReport(ready=True, redis="ok", warnings=await self._config_check.warnings(redis))


async def fewest_replicas(redis: Redis) -> int:
    """The fewest replicas connected to any primary the receiver writes to (0 when that cannot be read)."""
    try:
        async with asyncio.timeout(PING_TIMEOUT_S):
            if isinstance(redis, RedisCluster):
                infos = await redis.info("replication", target_nodes=RedisCluster.PRIMARIES)
                counts = [int(info.get("connected_slaves", 0)) for info in infos.values()]
            else:
                counts = [int((await redis.info("replication")).get("connected_slaves", 0))]
    except (RedisError, OSError, TimeoutError):
        return 0
    return min(counts, default=0)
