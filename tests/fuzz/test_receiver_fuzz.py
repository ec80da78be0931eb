"""Fuzzing the receiver: hostile headers, bodies, methods, paths and framing, in-process and against a real server.

Properties: never a 500, never a crash (the process still answers `/healthz`), a 200 only for a delivery signed
with the source's secret over exactly the bytes sent, and memory that stays bounded under hostile traffic.
Hypothesis runs derandomized (a fixed seed per test), so every run tries the same inputs.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson
import pytest
import redis
from hypothesis import HealthCheck, event, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from processor.devtools.embedded_redis import EmbeddedRedis
from receiver import create_app
from shared.envelope import parse_envelope
from shared.errors import EnvelopeError
from shared.keys import INBOX
from shared.settings import Settings
from shared.signature import sign
from shared.wire import decode_message
from tests.fuzz.strategies import (
    HOSTILE_BODIES,
    LIMIT,
    NOW_MS,
    SECRET,
    Signatures,
    bodies,
    padded_event,
    signatures,
)
from tests.receiver.conftest import now_ms, serving
from tests.security.live_receiver import LiveReceiver, RawResponse, ResponseReader, exchange, live_receiver

WEBHOOK = "/webhooks/workos"
#: Every answer the receiver gives to input (503 needs Redis down, which these tests never do).
DELIBERATE = {200, 400, 401, 404, 405, 413}
FUZZ = hypothesis_settings(
    database=None,
    derandomize=True,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
RSS_GROWTH_BOUND = 50 * 1024 * 1024

pytestmark = pytest.mark.slow


def _is_envelope(body: bytes) -> bool:
    try:
        parse_envelope(body)
    except EnvelopeError:
        return False
    return True


# --- in-process: the real app, its lifespan, real Redis --------------------------------------------------------


@pytest.fixture
async def fuzz_client(base_env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    # The clock is pinned so that signatures drawn by Hypothesis are fresh, stale or future deterministically.
    app = create_app(Settings.from_env(base_env), clock_ms=lambda: NOW_MS)
    async with serving(app) as client:
        yield client


_METHODS = st.sampled_from(["POST"] * 12 + ["GET", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE", "post", "FOO"])
_SOURCES = st.one_of(
    st.just("workos"),
    st.just("workos"),
    st.just("workos"),
    st.just("workos"),
    st.sampled_from(
        [
            "WORKOS",
            "%77orkos",  # percent-encoded `workos`: the same source
            "workos%2Fextra",
            "workos%00",
            "w%C3%B6rkos",
            "wörkos",
            "%2e%2e",
            "..%2Fhealthz",
            "workos%20",
            "a" * 10_000,
            "%" * 3,
            "",
        ]
    ),
    # Printable text: an HTTP client cannot put control characters in a URL (raw sockets do, below).
    st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=30),
)
_EXTRA_HEADERS = st.lists(
    st.tuples(st.sampled_from([b"content-type", b"x-fuzz", b"transfer-encoding", b"expect"]), st.binary(max_size=40)),
    max_size=3,
).map(lambda pairs: [(name, bytes(b for b in value if 32 <= b < 127)) for name, value in pairs])


@hypothesis_settings(FUZZ, max_examples=300)
@given(data=st.data())
async def test_no_input_gets_a_500_or_an_unearned_200(
    fuzz_client: httpx.AsyncClient, redis_client: redis.Redis, data: st.DataObject
) -> None:
    # Given any method, source segment, body, extra headers and WorkOS-Signature header(s)
    method = data.draw(_METHODS, label="method")
    source = data.draw(_SOURCES, label="source")
    body = data.draw(bodies, label="body")
    sent: Signatures = data.draw(signatures(body), label="signatures")
    headers = [(b"workos-signature", value) for value in sent.values] + data.draw(_EXTRA_HEADERS, label="headers")
    url = httpx.URL(f"http://receiver/webhooks/{source}")

    # When it is delivered
    response = await fuzz_client.request(method, url, content=body, headers=headers)

    # Then the answer is a deliberate JSON one, never a 500
    event(f"status {response.status_code}")
    assert response.status_code in DELIBERATE, response.text
    assert response.headers["content-type"] == "application/json"
    # And a 200 only ever answers a genuine delivery of the exact bytes, which is then stored byte for byte
    to_workos = url.path == WEBHOOK and method.upper() == "POST"  # httpx upper-cases methods
    if response.status_code == 200:
        assert to_workos
        assert sent.any_genuine
        assert len(body) <= LIMIT
        assert decode_message(redis_client.lindex(INBOX, -1)).raw == body
    # And a genuine delivery of a valid envelope is stored (the fuzzing above reaches the store)
    if to_workos and sent.last_genuine and len(body) <= LIMIT and _is_envelope(body):
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("size", [LIMIT - 1, LIMIT, LIMIT + 1])
async def test_the_body_limit_is_exact(fuzz_client: httpx.AsyncClient, size: int) -> None:
    body = padded_event(size)
    headers = {"WorkOS-Signature": sign(body, SECRET, NOW_MS)}

    response = await fuzz_client.post(WEBHOOK, content=body, headers=headers)

    assert response.status_code == (200 if size <= LIMIT else 413), response.text


@pytest.mark.parametrize("build", HOSTILE_BODIES, ids=range(len(HOSTILE_BODIES)))
async def test_hostile_bodies_signed_correctly_get_a_deliberate_answer(
    fuzz_client: httpx.AsyncClient, build: object
) -> None:
    # Signed with the right secret, so each body really reaches the JSON parser and the envelope checks
    assert callable(build)
    body: bytes = build()
    headers = {"WorkOS-Signature": sign(body, SECRET, NOW_MS)}

    response = await fuzz_client.post(WEBHOOK, content=body, headers=headers)

    expected = 413 if len(body) > LIMIT else 200 if _is_envelope(body) else 400
    assert response.status_code == expected, response.text


# --- a real server over raw sockets: framing, request lines and header bytes no HTTP client would send --------


@pytest.fixture(scope="module")
def live(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveReceiver]:
    if not redis_server.running:
        redis_server.start()
    with live_receiver(tmp_path_factory.mktemp("fuzz-receiver"), redis_server.url) as receiver:
        yield receiver
        assert receiver.alive(), receiver.output()
        assert receiver.stop() == 0, receiver.output()
        assert "Traceback" not in receiver.output()


def _request(
    method: bytes = b"POST",
    target: bytes = WEBHOOK.encode(),
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    *,
    version: bytes = b"HTTP/1.1",
) -> bytes:
    lines = [method + b" " + target + b" " + version, b"host: 127.0.0.1"]
    lines += [name + b": " + value for name, value in headers or []]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _chunked(body: bytes, size: int) -> bytes:
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


def _signed_header(body: bytes) -> tuple[bytes, bytes]:
    return b"workos-signature", sign(body, SECRET, now_ms()).encode()


def _framings(body: bytes) -> st.SearchStrategy[tuple[list[tuple[bytes, bytes]], bytes, bool]]:
    """Framing headers, the bytes that follow the head, and whether the server receives exactly `body`."""
    exact = len(body)
    return st.one_of(
        st.just(([(b"content-length", b"%d" % exact)], body, True)),
        st.just(([(b"content-length", b" %d " % exact)], body, True)),  # spaces around a value are allowed
        st.integers(1, 4096).map(lambda size: ([(b"transfer-encoding", b"chunked")], _chunked(body, size), True)),
        # Content-Length smaller than what follows: the rest is read as a next request
        st.integers(0, max(exact - 1, 0)).map(lambda n: ([(b"content-length", b"%d" % n)], body, n == exact)),
        st.sampled_from(
            [
                [(b"content-length", b"abc")],
                [(b"content-length", b"-1")],
                [(b"content-length", b"+%d" % exact)],
                [(b"content-length", b"%d" % exact), (b"content-length", b"%d" % exact)],
                [(b"content-length", b"%d" % exact), (b"content-length", b"%d" % (exact + 1))],
                [(b"content-length", b"%d, %d" % (exact, exact))],
                [(b"content-length", b"%d" % exact), (b"transfer-encoding", b"chunked")],
                [(b"transfer-encoding", b"chunked, identity")],
                [(b"transfer-encoding", b"gzip")],
                [(b"content-length", b"99999999999999999999999999")],
            ]
        ).map(lambda headers: (headers, body, False)),
        st.sampled_from([b"zz\r\n", b"-1\r\n", b"1;ext=\xff\r\nx\r\n0\r\n\r\n", b"ffffffffffffffffff\r\n"]).map(
            lambda chunk: ([(b"transfer-encoding", b"chunked")], chunk, False)
        ),
    )


_RAW_TARGETS = st.sampled_from(
    [b"/webhooks/workos"] * 12
    + [
        b"/webhooks/%77orkos",
        b"/webhooks/../webhooks/workos",
        b"/webhooks/./workos",
        b"/webhooks//workos",
        b"/webhooks/workos/",
        b"/webhooks/workos?x=1",
        b"/webhooks/workos#frag",
        b"/webhooks/w\xc3\xb6rkos",  # raw UTF-8 in the request line
        b"/webhooks/w\xf6rkos",  # raw latin-1
        b"/webhooks/%ff%fe",
        b"/webhooks/%",
        b"/webhooks/" + b"a" * 60_000,
        b"http://127.0.0.1/webhooks/workos",  # absolute form
        b"*",
        b"/%2e%2e/%2e%2e/etc/passwd",
        b"/webhooks/workos\x00",
    ]
)
#: The targets above that name the workos source (uvicorn neither normalizes dot segments nor merges slashes).
_WORKOS_TARGETS = {
    b"/webhooks/workos",
    b"/webhooks/%77orkos",
    b"/webhooks/workos?x=1",
    b"/webhooks/workos#frag",
    b"http://127.0.0.1/webhooks/workos",
}
_RAW_METHODS = st.sampled_from([b"POST"] * 16 + [b"GET", b"HEAD", b"PUT", b"CONNECT", b"post", b"P\xd6ST", b"FOO"])


_RAW_BODIES = st.sampled_from([b"", b"{}", b"\xff\xfe not json"]) | st.builds(
    lambda event_id: orjson.dumps({"id": event_id, "event": "x", "data": {}}), st.text(min_size=1, max_size=8)
)


def _raw_signature_headers(body: bytes) -> st.SearchStrategy[tuple[list[tuple[bytes, bytes]], bool]]:
    genuine = st.just(([_signed_header(body)], True))
    hostile = st.sampled_from(
        [
            [],
            [(b"workos-signature", b"")],
            [(b"workos-signature", b"t=1, v1=" + b"0" * 64)],
            [(b"workos-signature", b"\xe9\xff\x80" * 20)],  # latin-1 bytes
            [(b"workos-signature", "t=१२३, v1=ab".encode())],
            [(b"workos-signature", b"x" * 60_000)],  # huge, under uvicorn's buffer but far over the parser's cap
            [(b"WorkOS-Signature ", b"t=1, v1=00")],  # whitespace before the colon
            [(b"workos-signature", b"t=1\x00, v1=00")],  # NUL in a value
            [(b"workos-signature", b"a\r\n x")],  # obsolete line folding
            [(b"workos\xff-signature", b"x")],
        ]
    ).map(lambda headers: (headers, False))
    repeated = st.just(([_signed_header(body), (b"workos-signature", b"garbage")], False))
    return st.one_of(genuine, hostile, repeated)


@hypothesis_settings(FUZZ, max_examples=300)
@given(data=st.data())
def test_transport_level_inputs_never_crash_or_get_a_500(live: LiveReceiver, data: st.DataObject) -> None:
    # Given a request whose line, headers and framing may each be hostile
    body = data.draw(_RAW_BODIES, label="body")
    method = data.draw(_RAW_METHODS, label="method")
    target = data.draw(_RAW_TARGETS, label="target")
    version = data.draw(st.sampled_from([b"HTTP/1.1"] * 16 + [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b""]))
    signature_headers, signed = data.draw(_raw_signature_headers(body), label="signature")
    framing, payload, framed_exactly = data.draw(_framings(body), label="framing")

    # When it is sent on a fresh connection
    response = exchange(live.port, _request(method, target, signature_headers + framing, payload, version=version))

    # Then the server answers deliberately (or refuses the connection), never 500
    event(f"status {response.status if response else None}")
    if response is not None:
        assert response.status != 500, response
        assert response.status in DELIBERATE, response
        # And never 200 unless the exact signed bytes arrived at the workos source by POST
        if response.status == 200:
            assert signed and framed_exactly and method == b"POST", response
            assert target in _WORKOS_TARGETS, target


def test_a_content_length_larger_than_the_body_then_a_close_is_survived(live: LiveReceiver) -> None:
    body = b'{"id":"evt_short","event":"x","data":{}}'
    for declared in (len(body) + 1, LIMIT, LIMIT + 1, 10**12):
        with socket.create_connection(("127.0.0.1", live.port), timeout=5.0) as sock:
            sock.sendall(_request(headers=[_signed_header(body), (b"content-length", b"%d" % declared)], body=body))
        # The socket is closed with the body incomplete: nobody is left to answer.
    assert live.alive()


@pytest.mark.parametrize("chunk_size", [None, 1000, 65536])
@pytest.mark.parametrize("size", [LIMIT - 1, LIMIT, LIMIT + 1])
def test_the_body_limit_holds_for_every_framing(live: LiveReceiver, size: int, chunk_size: int | None) -> None:
    # Given a correctly signed valid envelope of `size` bytes, framed by Content-Length or chunked
    body = padded_event(size)
    if chunk_size is None:
        request = _request(headers=[_signed_header(body), (b"content-length", b"%d" % size)], body=body)
    else:
        request = _request(
            headers=[_signed_header(body), (b"transfer-encoding", b"chunked")], body=_chunked(body, chunk_size)
        )

    response = exchange(live.port, request)

    # Then up to the limit it is stored, one byte over it is refused and the connection closed
    assert response is not None
    if size <= LIMIT:
        assert response.status == 200, response
    else:
        assert response.status == 413, response
        assert response.headers[b"connection"] == b"close"


def test_pipelined_requests_get_one_answer_each(live: LiveReceiver) -> None:
    body = orjson.dumps({"id": "evt_pipelined", "event": "x", "data": {}})
    signed = _request(headers=[_signed_header(body), (b"content-length", b"%d" % len(body))], body=body)
    unsigned = _request(headers=[(b"content-length", b"%d" % len(body))], body=body)
    with socket.create_connection(("127.0.0.1", live.port), timeout=5.0) as sock:
        sock.sendall(unsigned + signed + unsigned)
        reader = ResponseReader(sock)
        answers = [reader.next() for _ in range(3)]
    assert [answer.status if answer else None for answer in answers] == [401, 200, 401]


# --- memory ----------------------------------------------------------------------------------------------------


def _hostile_request(kind: int, body: bytes) -> bytes:
    if kind == 0:  # signed, Content-Length
        return _request(headers=[_signed_header(body), (b"content-length", b"%d" % len(body))], body=body)
    if kind == 1:  # signed, chunked
        return _request(headers=[_signed_header(body), (b"transfer-encoding", b"chunked")], body=_chunked(body, 65536))
    if kind == 2:  # tampered after signing
        tampered = body[:-1] + b"!"
        return _request(headers=[_signed_header(body), (b"content-length", b"%d" % len(body))], body=tampered)
    if kind == 3:  # a huge garbage signature
        signature = (b"workos-signature", b"v" * 60_000)
        return _request(headers=[signature, (b"content-length", b"%d" % len(body))], body=body)
    if kind == 4:  # an unknown source, and the body anyway
        target = b"/webhooks/" + b"x" * 2000
        return _request(target=target, headers=[(b"content-length", b"%d" % len(body))], body=body)
    return b"\x16\x03\x01\x02\x00" + body[:4096]  # not HTTP at all (a TLS hello)


def _hostile_requests(rounds: int) -> Iterator[bytes]:
    bodies = [
        b"[" * 100_000,
        padded_event(LIMIT - 1),
        padded_event(LIMIT),
        padded_event(LIMIT + 1),
        orjson.dumps({"id": "evt_small", "event": "x", "data": {}}),
    ]
    for _ in range(rounds):
        for kind in range(6):
            for body in bodies:
                yield _hostile_request(kind, body)


def _send(port: int, request: bytes) -> RawResponse | None:
    return exchange(port, request, timeout_s=10.0)


def test_memory_stays_bounded_under_hostile_traffic(redis_url: str, tmp_path: Path) -> None:
    with live_receiver(tmp_path, redis_url) as receiver:
        # Given a receiver that has served one ordinary delivery
        body = orjson.dumps({"id": "evt_warm", "event": "x", "data": {}})
        warm = _send(
            receiver.port, _request(headers=[_signed_header(body), (b"content-length", b"%d" % len(body))], body=body)
        )
        assert warm is not None and warm.status == 200
        before = receiver.rss_bytes()

        # When it gets 300 hostile requests, near-limit and deeply nested bodies among them, 8 at a time
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda request: _send(receiver.port, request), _hostile_requests(rounds=10)))

        # Then it answered all of them deliberately, still answers, and its memory grew by a bounded amount
        statuses = {answer.status for answer in answers if answer is not None}
        assert statuses == {200, 400, 401, 404, 413}, statuses  # every kind of answer, and no other
        assert receiver.alive()
        growth = receiver.rss_bytes() - before
        assert growth < RSS_GROWTH_BOUND, f"RSS grew by {growth / 2**20:.1f} MiB"
        assert receiver.stop() == 0
