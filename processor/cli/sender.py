"""A concurrent, paced webhook sender for `hookyard send`: bounded concurrency on one `httpx.AsyncClient`, each
delivery signed the moment it leaves (as WorkOS signs every attempt afresh), optionally at a fixed rate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from shared.clock import wall_ms
from shared.signature import sign

__all__ = ["FATAL_ERRORS", "Delivery", "Outcome", "send_all"]

#: Errors that say nothing can be delivered to this URL at all: the run stops at the first one.
FATAL_ERRORS = frozenset({"connect", "url"})


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST: the body's exact bytes; `duplicate` when it is a second delivery of an event already sent."""

    body: bytes
    event_id: str
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one delivery: an HTTP status and body, or an error kind (`connect`, `timeout`, ...)."""

    delivery: Delivery
    status: int | None
    text: str = ""
    error: str | None = None
    detail: str = ""


async def send_all(
    url: str,
    secret: bytes,
    deliveries: Sequence[Delivery],
    *,
    concurrency: int,
    rate: float | None,
    timeout_s: float,
    on_outcome: Callable[[Outcome], None],
) -> list[Outcome]:
    """POST every delivery to `url`, at most `concurrency` at once and at most `rate` starts per second.

    A refused connection or an unusable URL stops the run (the remaining deliveries would only repeat it),
    so the result may be shorter than `deliveries`. Every other failure is one outcome and the run
    goes on.
    """
    outcomes: list[Outcome] = []
    pending = iter(enumerate(deliveries))  # shared by the lanes: each delivery goes to exactly one
    stopped = False
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def lane() -> None:
        nonlocal stopped
        # One client (one connection) per lane: httpcore scans its whole pool on every request, so a single
        # client with many connections spends more CPU on that than on the requests themselves.
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:
            for i, delivery in pending:
                if rate:
                    # Paced from the start, not from the previous send: a slow response does not lower the rate.
                    delay = started + i / rate - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if stopped:
                    return
                outcome = await _post(client, url, secret, delivery)
                stopped = stopped or outcome.error in FATAL_ERRORS
                outcomes.append(outcome)
                on_outcome(outcome)

    await asyncio.gather(*(lane() for _ in range(max(1, min(concurrency, len(deliveries))))))
    return outcomes


async def _post(client: httpx.AsyncClient, url: str, secret: bytes, delivery: Delivery) -> Outcome:
    headers = {
        "Content-Type": "application/json",
        "WorkOS-Signature": sign(delivery.body, secret, wall_ms()),
    }
    try:
        response = await client.post(url, content=delivery.body, headers=headers)
    except httpx.ConnectError as exc:
        return Outcome(delivery, None, error="connect", detail=str(exc))
    except httpx.TimeoutException as exc:
        return Outcome(delivery, None, error="timeout", detail=str(exc))
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        return Outcome(delivery, None, error="url", detail=str(exc))
    except httpx.HTTPError as exc:
        return Outcome(delivery, None, error=type(exc).__name__, detail=str(exc))
    return Outcome(delivery, response.status_code, " ".join(response.text.split()))
