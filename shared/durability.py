"""Whether a Redis keeps what it acknowledged: append-only persistence on, and no eviction policy.

Pure: it judges replies the caller already has (CONFIG GET, and INFO as a fallback where CONFIG is refused, as
managed Redis services often do), so the receiver's readiness probe and `hookyard doctor` reach the same
verdict from the same rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, NamedTuple

__all__ = [
    "APPENDONLY",
    "CONFIG_NAMES",
    "MAXMEMORY_POLICY",
    "Durability",
    "Finding",
    "Setting",
    "assess_durability",
]

Setting = Literal["appendonly", "maxmemory-policy"]

APPENDONLY: Final[Setting] = "appendonly"
MAXMEMORY_POLICY: Final[Setting] = "maxmemory-policy"
#: What each setting must be for an event Redis acknowledged to survive a restart and memory pressure.
_REQUIRED: Final[Mapping[Setting, str]] = {APPENDONLY: "yes", MAXMEMORY_POLICY: "noeviction"}
#: The names to CONFIG GET, one call each (Redis before 7 takes one pattern per call).
CONFIG_NAMES: Final[tuple[Setting, ...]] = tuple(_REQUIRED)


@dataclass(frozen=True, slots=True)
class Finding:
    """One setting as Redis reported it (lower-case), or `None` when neither CONFIG GET nor INFO said."""

    setting: Setting
    value: str | None

    @property
    def required(self) -> str:
        return _REQUIRED[self.setting]

    @property
    def known(self) -> bool:
        return self.value is not None

    @property
    def durable(self) -> bool:
        return self.value == self.required


class Durability(NamedTuple):
    """The two findings durability rests on."""

    persistence: Finding  # appendonly
    eviction: Finding  # maxmemory-policy

    @property
    def durable(self) -> bool:
        return self.persistence.durable and self.eviction.durable


def assess_durability(replies: Iterable[object], info: Mapping[str, object] | None = None) -> Durability:
    """Judge CONFIG GET `replies` (redis-py's `{name: value}` dicts, bytes or str keys and values; anything else,
    such as an empty reply to a forbidden CONFIG, says nothing), falling back to `info` (INFO's `aof_enabled` and
    `maxmemory_policy`) for a setting no reply named."""
    config: dict[str, str] = {}
    for reply in replies:
        if not isinstance(reply, Mapping):
            continue
        for name, value in reply.items():
            text_name, text_value = _text(name), _text(value)
            if text_name is not None and text_value is not None:
                config[text_name.lower()] = text_value.lower()
    fallback = _from_info(info or {})
    return Durability(
        persistence=Finding(APPENDONLY, config.get(APPENDONLY, fallback.get(APPENDONLY))),
        eviction=Finding(MAXMEMORY_POLICY, config.get(MAXMEMORY_POLICY, fallback.get(MAXMEMORY_POLICY))),
    )


def _from_info(info: Mapping[str, object]) -> dict[Setting, str]:
    found: dict[Setting, str] = {}
    aof_enabled = info.get("aof_enabled")
    if aof_enabled is not None:
        found[APPENDONLY] = "yes" if str(aof_enabled) == "1" else "no"
    policy = _text(info.get("maxmemory_policy"))
    if policy:
        found[MAXMEMORY_POLICY] = policy.lower()
    return found


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return value if isinstance(value, str) else None
