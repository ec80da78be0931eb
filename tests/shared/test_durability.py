"""Tests for shared/durability.py: CONFIG GET replies (and INFO, where CONFIG is refused) judged for durability."""

from __future__ import annotations

import pytest
import redis

from shared.durability import APPENDONLY, CONFIG_NAMES, MAXMEMORY_POLICY, assess_durability

DURABLE_BYTES = [{b"appendonly": b"yes"}, {b"maxmemory-policy": b"noeviction"}]
DURABLE_STR = [{"appendonly": "yes"}, {"maxmemory-policy": "noeviction"}]


@pytest.mark.parametrize(
    ("replies", "info", "expected"),
    [
        # (appendonly, maxmemory-policy) as found; None: nobody said
        pytest.param(DURABLE_BYTES, None, ("yes", "noeviction"), id="bytes replies"),
        pytest.param(DURABLE_STR, None, ("yes", "noeviction"), id="decoded replies"),
        pytest.param(
            [{"appendonly": "YES"}, {"maxmemory-policy": "NoEviction"}], None, ("yes", "noeviction"), id="any case"
        ),
        pytest.param(
            [{b"appendonly": b"no"}, {b"maxmemory-policy": b"allkeys-lru"}], None, ("no", "allkeys-lru"), id="neither"
        ),
        pytest.param(
            [{b"appendonly": b"yes", b"maxmemory-policy": b"noeviction"}],
            None,
            ("yes", "noeviction"),
            id="one reply naming both",
        ),
        pytest.param([{}, {}], None, (None, None), id="empty replies"),
        pytest.param([None, "OK", 3], None, (None, None), id="not a reply"),
        pytest.param([], {"aof_enabled": 1, "maxmemory_policy": "noeviction"}, ("yes", "noeviction"), id="info"),
        pytest.param(
            [], {"aof_enabled": "0", "maxmemory_policy": "volatile-lru"}, ("no", "volatile-lru"), id="info, not durable"
        ),
        pytest.param(
            [{}, {b"maxmemory-policy": b"noeviction"}],
            {"aof_enabled": 0},
            ("no", "noeviction"),
            id="info fills the gap",
        ),
        pytest.param([{"appendonly": "yes"}], {"aof_enabled": 0}, ("yes", None), id="config wins over info"),
    ],
)
def test_findings(replies: list[object], info: dict[str, object] | None, expected: tuple[str | None, ...]) -> None:
    durability = assess_durability(replies, info)

    assert (durability.persistence.value, durability.eviction.value) == expected
    assert durability.persistence.setting == APPENDONLY
    assert durability.eviction.setting == MAXMEMORY_POLICY
    assert durability.persistence.durable is (expected[0] == "yes")
    assert durability.eviction.durable is (expected[1] == "noeviction")
    assert durability.persistence.known is (expected[0] is not None)
    assert durability.durable is (expected == ("yes", "noeviction"))


def test_what_each_setting_requires() -> None:
    persistence, eviction = assess_durability([])

    assert (persistence.required, eviction.required) == ("yes", "noeviction")
    assert CONFIG_NAMES == (APPENDONLY, MAXMEMORY_POLICY)


def test_the_test_redis_is_durable(redis_client: redis.Redis) -> None:
    # The replies as redis-py really returns them, from the suite's Redis (AOF on, noeviction).
    replies = [redis_client.config_get(name) for name in CONFIG_NAMES]

    assert assess_durability(replies, redis_client.info()).durable
