"""Hypothesis strategies for hostile webhook deliveries, each labelled with whether it is genuinely signed.

A delivery is *genuine* when one of its `WorkOS-Signature` values was made with the source's secret over exactly
the body sent, at a time within the tolerance of the receiver's (pinned) clock. Only a genuine delivery may ever
be answered 200; every other shape (tampered, stale, foreign secret, garbage) must be refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import orjson
from hypothesis import strategies as st

from shared.signature import sign
from tests.conftest import TEST_SECRET

#: The fuzzed apps' pinned clock (unix ms) and the default tolerance, so signatures are reproducible.
NOW_MS: Final = 1_722_443_701_539
TOLERANCE_MS: Final = 180_000
LIMIT: Final = 1024 * 1024  # HOOKYARD_MAX_BODY_BYTES's default
SECRET: Final = TEST_SECRET.encode()
OTHER_SECRET: Final = b"whsec_somebody_else_entirely"

# Bytes that never reach an app inside a header value: HTTP parsers refuse control characters (tab is allowed).
_HEADER_BYTES = st.binary(max_size=200).map(lambda raw: bytes(b for b in raw if b == 9 or 32 <= b != 127))


@dataclass(frozen=True)
class Signatures:
    """The `WorkOS-Signature` values to send (in order: repeated headers), and which of them are genuine."""

    values: tuple[bytes, ...]
    genuine: tuple[bool, ...]

    @property
    def any_genuine(self) -> bool:
        return any(self.genuine)

    @property
    def last_genuine(self) -> bool:
        # The endpoint reads the last of repeated headers (as a proxy folding them would keep it last too).
        return bool(self.genuine) and self.genuine[-1]


def padded_event(size: int) -> bytes:
    """A valid envelope of exactly `size` bytes (for the body limit's boundary)."""
    head = b'{"id":"evt_padded","event":"fuzz.padded","data":{"pad":"'
    tail = b'"}}'
    return head + b"p" * (size - len(head) - len(tail)) + tail


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# Built on first draw, not at import: some are megabytes.
HOSTILE_BODIES: Final[tuple[Callable[[], bytes], ...]] = (
    lambda: b"",
    lambda: b"[" * 100_000,  # unterminated, deeper than any parser's stack
    lambda: _nested(100_000),
    lambda: b'{"id":"evt_deep","event":"x","data":' + _nested(5_000) + b"}",
    lambda: b'{"id":"evt_num","event":"x","data":{"n":' + b"9" * 100_000 + b"}}",  # huge number
    lambda: b'{"id":"evt_exp","event":"x","data":{"n":1e999999}}',
    lambda: b'{"id":"evt_a","id":"evt_b","event":"x","event":"y","data":{},"data":{}}',  # duplicate keys
    lambda: b'{"id":"evt_\xff\xfe","event":"x","data":{}}',  # not UTF-8
    lambda: b'{"id":"evt_\xed\xa0\x80","event":"x","data":{}}',  # a UTF-8-encoded surrogate
    lambda: b'{"id":"evt_nul\\u0000","event":"x\\ud800","data":{}}',  # escaped NUL, lone surrogate escape
    lambda: b"\xef\xbb\xbf" + orjson.dumps({"id": "evt_bom", "event": "x", "data": {}}),  # BOM
    lambda: orjson.dumps({"id": "evt_" + "i" * 100_000, "event": "x", "data": {}}),
    lambda: orjson.dumps({"id": "evt_list", "event": "x", "data": []}),
    lambda: b"\x00" * 4096,
    lambda: padded_event(LIMIT - 1),
    lambda: padded_event(LIMIT),
    lambda: padded_event(LIMIT + 1),
)

_json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=40)
)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_ids = st.text(min_size=1, max_size=40)
envelopes = st.builds(
    lambda event_id, event, data, extra: orjson.dumps({**extra, "id": event_id, "event": event, "data": data}),
    _ids,
    _ids,
    st.dictionaries(st.text(max_size=10), _json, max_size=3),
    st.dictionaries(st.sampled_from(["created_at", "object", "context"]), _json, max_size=3),
)
bodies = st.one_of(
    envelopes,
    envelopes,
    envelopes,  # thrice: valid envelopes are what a 200 needs
    st.binary(max_size=1024),
    _json.map(orjson.dumps),
    st.sampled_from(HOSTILE_BODIES).map(lambda build: build()),
)


def _signed(body: bytes, secret: bytes, skew_ms: int) -> str:
    return sign(body, secret, NOW_MS + skew_ms)


def _flip_hex(signature: str, index: int) -> str:
    position = signature.index("v1=") + 3 + index % 64
    flipped = "0" if signature[position] != "0" else "1"
    return signature[:position] + flipped + signature[position + 1 :]


def one_signature(body: bytes) -> st.SearchStrategy[tuple[bytes, bool]]:
    """One `WorkOS-Signature` value for `body` and whether it is genuine."""
    fresh = st.integers(-TOLERANCE_MS, TOLERANCE_MS)
    genuine = fresh.map(lambda skew: _signed(body, SECRET, skew))

    def reformatted(signature: str, style: int) -> str:
        timestamp, digest = signature[2:].split(", v1=")
        return [
            f"v1={digest}, t={timestamp}",
            f"t={timestamp},v1={digest.upper()}",
            f" t = {timestamp} , v0=abc, v1={'f' * 64}, v1={digest} ",
        ][style]

    valid = st.one_of(
        genuine,
        st.builds(reformatted, genuine, st.integers(0, 2)),
        # The same time zero-padded: the MAC covers the time as a number, so this proves as much as the original.
        genuine.map(lambda value: value.replace("t=", "t=0", 1)),
    ).map(lambda value: (value.encode(), True))
    forged = st.one_of(
        st.integers(TOLERANCE_MS + 1, 10**9).map(lambda age: _signed(body, SECRET, -age)),  # replayed: stale
        st.integers(TOLERANCE_MS + 1, 10**9).map(lambda ahead: _signed(body, SECRET, ahead)),  # future
        fresh.map(lambda skew: _signed(body, OTHER_SECRET, skew)),  # someone else's secret
        st.builds(_flip_hex, genuine, st.integers(0, 63)),  # one digit off
        st.binary(min_size=1, max_size=64)  # the signature of another body
        .filter(lambda other: other != body)
        .flatmap(lambda other: fresh.map(lambda skew: _signed(other, SECRET, skew))),
        genuine.map(lambda value: value.split(", v1=")[0]),  # t only
    ).map(lambda value: (value.encode(), False))
    garbage = st.one_of(
        st.just(b""),
        _HEADER_BYTES,  # includes latin-1 bytes above 0x7f
        st.sampled_from([b"t=" + b"1" * 100_000, b"v1=" + b"a" * 100_000, b"t=1, v1=" + b"," * 50_000]),
        st.just("t=١٧٢٢٤٤٣٧٠١٥٣٩, v1=".encode() + b"0" * 64),  # non-ASCII digits
        st.just(b"t=1722443701539, v1=" + "\uff41".encode() * 64),  # full-width `a`: a hex lookalike
    ).map(lambda value: (value, False))
    return st.one_of(valid, forged, garbage)


def signatures(body: bytes) -> st.SearchStrategy[Signatures]:
    """Mostly one header; else none, or a repeated header (in any order of genuine and not)."""
    single = one_signature(body).map(lambda drawn: Signatures((drawn[0],), (drawn[1],)))
    several = st.lists(one_signature(body), max_size=3).map(
        lambda drawn: Signatures(tuple(value for value, _ in drawn), tuple(ok for _, ok in drawn))
    )
    return st.one_of(single, single, several)
