"""End to end: a signed POST to the real receiver process reaches a handler in a real worker process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import orjson
import pytest
import redis

from shared import keys
from shared.signature import sign
from tests.conftest import TEST_SECRET
from tests.fixtures import WORKOS_SAMPLES
from tests.fixtures.live_stack import live_stack
from tests.fixtures.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture
def stack(redis_url: str) -> Iterator[str]:
    """Receiver and one worker process, as `hookyard dev` runs them; yields the webhook URL."""
    with live_stack(redis_url, TEST_SECRET) as url:
        yield url


def test_a_signed_delivery_reaches_the_handler_with_every_field(stack: str, redis_client: redis.Redis) -> None:
    body = (WORKOS_SAMPLES / "connection.deactivated.json").read_bytes()
    signed_ms = int(time.time() * 1000)
    header = sign(body, TEST_SECRET.encode(), signed_ms)
    before = datetime.now().astimezone()
    response = httpx.post(stack, content=body, headers={"WorkOS-Signature": header}, timeout=10)
    assert response.status_code == 200, response.text
    envelope = orjson.loads(body)
    assert response.json() == {"status": "accepted", "id": envelope["id"]}
    # A duplicate delivery is accepted too (the sender must stop retrying) but is not handled twice
    again = httpx.post(stack, content=body, headers={"WorkOS-Signature": header}, timeout=10)
    assert again.status_code == 200

    wait_for(lambda: redis_client.llen("test:fields") >= 1, 20, "the handler to run")
    [seen] = [orjson.loads(x) for x in redis_client.lrange("test:fields", 0, -1)]
    assert seen["id"] == envelope["id"]
    assert seen["type"] == envelope["event"]
    assert seen["data"] == envelope["data"]
    assert seen["source"] == "workos"
    assert seen["raw"] == body.decode()
    assert datetime.fromisoformat(seen["signed_at"]).timestamp() == pytest.approx(signed_ms / 1000, abs=0.001)
    if envelope.get("created_at"):
        assert seen["issued_at"] == seen["created_at"]
    else:
        assert seen["issued_at"] == seen["signed_at"]
    assert datetime.fromisoformat(seen["received_at"]) >= before.replace(microsecond=0)
    assert (seen["late"], seen["attempt"]) == (False, 1)

    # Once both deliveries are ingested and nothing is due anywhere, no further run can happen
    def settled() -> bool:
        due = sum(redis_client.zcard(keys.due_key(shard)) for shard in range(keys.SHARDS))
        return redis_client.llen(keys.INBOX) == 0 and due == 0

    wait_for(settled, 20, "the duplicate to be ingested")
    assert redis_client.llen("test:fields") == 1
