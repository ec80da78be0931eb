"""WorkOS webhook signatures (`WorkOS-Signature: t=<unix ms>, v1=<hex sha256>`) as pure functions of bytes.

No clock, no I/O: the caller hands in the time and the secrets; a rejection is a reasoned `SignatureError`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from shared.errors import SignatureError

__all__ = [
    "MAX_HEADER_LENGTH",
    "SignatureHeader",
    "parse_signature_header",
    "sign",
    "verify_signature",
]

# A real header is ~85 chars; the cap bounds the parsing and comparing work an attacker can ask for.
MAX_HEADER_LENGTH = 4096
# 15 digits of ms reach the year 33658 and keep int() trivially cheap on hostile input.
_MAX_TIMESTAMP_DIGITS = 15
_HEX_DIGEST_LENGTH = 64
_HEX_DIGITS = frozenset("0123456789abcdef")
# Exactly what WorkOS sends. One C-level match is twice as fast as the tolerant split below, which only
# runs for the rare header in any other shape; both give the same result for a header this matches.
_CANONICAL_HEADER = re.compile(r"t=([0-9]{1,15}), v1=([0-9a-f]{64})")


@dataclass(frozen=True, slots=True)
class SignatureHeader:
    """A parsed `WorkOS-Signature`: the signing time and every well-formed `v1` digest, lower-case hex."""

    timestamp_ms: int
    signatures: tuple[str, ...]


def parse_signature_header(header: str) -> SignatureHeader:
    """Parse a `WorkOS-Signature` value, tolerating field order, spacing, extra `v1`s and unknown schemes.

    Raises `SignatureError("missing_header")` for an empty value and `"malformed_header"` when no usable
    `t` and `v1` can be read from it.
    """
    if not header:
        raise SignatureError("missing_header")
    canonical = _CANONICAL_HEADER.fullmatch(header)
    if canonical is not None:
        return SignatureHeader(timestamp_ms=int(canonical[1]), signatures=(canonical[2],))
    if len(header) > MAX_HEADER_LENGTH:
        raise SignatureError("malformed_header", "header too long")
    timestamp_ms: int | None = None
    signatures: list[str] = []
    for field in header.split(","):
        key, _, value = field.partition("=")
        key = key.strip()
        value = value.strip()
        if key == "t":
            # isascii() first: str.isdigit() also accepts non-ASCII digits such as "²" that int() rejects.
            if not (0 < len(value) <= _MAX_TIMESTAMP_DIGITS and value.isascii() and value.isdigit()):
                raise SignatureError("malformed_header", "t is not a millisecond timestamp")
            value_ms = int(value)
            if timestamp_ms is not None and timestamp_ms != value_ms:
                raise SignatureError("malformed_header", "conflicting t values")
            timestamp_ms = value_ms
        elif key == "v1":
            digest = value.lower()
            # A malformed v1 can never match, so it is dropped rather than allowed to veto a good sibling.
            if len(digest) == _HEX_DIGEST_LENGTH and _HEX_DIGITS.issuperset(digest):
                signatures.append(digest)
        # Other schemes (v0=…) and stray fragments are ignored: the sender may add schemes we don't know.
    if timestamp_ms is None:
        raise SignatureError("malformed_header", "no t")
    if not signatures:
        raise SignatureError("malformed_header", "no valid v1")
    return SignatureHeader(timestamp_ms=timestamp_ms, signatures=tuple(signatures))


def verify_signature(
    body: bytes,
    header: str | None,
    secrets: Sequence[bytes],
    *,
    now_ms: int,
    tolerance_ms: int,
) -> int:
    """Check that `header` signs exactly `body` with one of `secrets`, within `tolerance_ms` of `now_ms`.

    Returns the verified signing time in unix ms. Raises `SignatureError` with reason `missing_header`,
    `malformed_header`, `stale`, `future` or `mismatch`, checked in that order. Several secrets allow a
    rotation window; each is tried against every `v1`.
    """
    if not header:
        raise SignatureError("missing_header")
    parsed = parse_signature_header(header)
    timestamp_ms = parsed.timestamp_ms
    if now_ms - timestamp_ms > tolerance_ms:
        raise SignatureError("stale", "signed too long ago")
    if timestamp_ms - now_ms > tolerance_ms:
        raise SignatureError("future", "signed in the future")
    prefix = b"%d." % timestamp_ms
    matched = False
    # Every secret meets every candidate with no early exit, so timing shows only how many there are,
    # never which secret (old or new) matched.
    for secret in secrets:
        expected = _digest_hex(secret, prefix, body)
        for candidate in parsed.signatures:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("mismatch", "no v1 matches any secret")
    return timestamp_ms


def sign(body: bytes, secret: bytes, timestamp_ms: int) -> str:
    """Return the `WorkOS-Signature` value WorkOS would send for `body`: `t=<ms>, v1=<hex>`."""
    if not 0 <= timestamp_ms < 10**_MAX_TIMESTAMP_DIGITS:
        raise ValueError(f"timestamp_ms out of range: {timestamp_ms}")
    return f"t={timestamp_ms}, v1={_digest_hex(secret, b'%d.' % timestamp_ms, body)}"


def _digest_hex(secret: bytes, prefix: bytes, body: bytes) -> str:
    # Feeding prefix and body separately avoids copying a large body just to prepend the timestamp.
    mac = _keyed_hmac(secret).copy()
    mac.update(prefix)
    mac.update(body)
    return mac.hexdigest()


@lru_cache(maxsize=64)
def _keyed_hmac(secret: bytes) -> hmac.HMAC:
    # Keying HMAC (hashing the padded key) costs as much as a short body; the keyed state is reusable
    # because callers only ever copy() it. A process has a handful of secrets, so the cache stays tiny.
    return hmac.new(secret, digestmod=hashlib.sha256)
