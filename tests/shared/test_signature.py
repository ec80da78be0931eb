"""Tests for shared/signature.py: a real WorkOS vector, the official SDK as an oracle, our extra tolerance."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from workos import WorkOSClient

from shared.errors import SignatureError
from shared.signature import (
    MAX_HEADER_LENGTH,
    SignatureHeader,
    parse_signature_header,
    sign,
    verify_signature,
)
from tests.fixtures import WORKOS_SAMPLES

EVENTS = WORKOS_SAMPLES

VECTOR_T = 1722443701539
VECTOR_HEADER = f"t={VECTOR_T}, v1=bd54a3768f461461c8439c2f97ab0d646ef3976f84d5d5b132d18f2fa89cdad5"
VECTOR_SECRET = b"2sAZJlbjP8Ce3rwkKEv2GfKef"

SECRET = b"whsec_current"
OLD_SECRET = b"whsec_previous"
T = 1_722_443_701_539
BODY = b'{"id":"event_01","event":"dsync.user.created","data":{}}'
TOLERANCE_MS = 180_000

# No example database: nothing is written into the shared tree, and no run depends on an earlier one.
PROPERTY = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _digest(header: str) -> str:
    return header.partition("v1=")[2]


def _reason(body: bytes, header: str | None, secrets: list[bytes], now_ms: int = T) -> str:
    with pytest.raises(SignatureError) as caught:
        verify_signature(body, header, secrets, now_ms=now_ms, tolerance_ms=TOLERANCE_MS)
    return caught.value.reason


# --- the real WorkOS vector ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vector_body() -> bytes:
    return (EVENTS / "connection.activated.body").read_bytes()


def test_real_vector_verifies(vector_body: bytes) -> None:
    verified = verify_signature(
        vector_body, VECTOR_HEADER, [VECTOR_SECRET], now_ms=VECTOR_T + 1000, tolerance_ms=TOLERANCE_MS
    )

    assert verified == VECTOR_T


def test_real_vector_any_flipped_byte_breaks_it(vector_body: bytes) -> None:
    for index in range(len(vector_body)):
        for mask in (0x01, 0x80):
            tampered = bytearray(vector_body)
            tampered[index] ^= mask
            assert _reason(bytes(tampered), VECTOR_HEADER, [VECTOR_SECRET], VECTOR_T) == "mismatch", index


def test_real_vector_truncated_or_extended_breaks_it(vector_body: bytes) -> None:
    for tampered in (vector_body[:-1], vector_body + b"\n", b" " + vector_body):
        assert _reason(tampered, VECTOR_HEADER, [VECTOR_SECRET], VECTOR_T) == "mismatch"


def test_real_vector_wrong_secret_is_mismatch(vector_body: bytes) -> None:
    assert _reason(vector_body, VECTOR_HEADER, [b"2sAZJlbjP8Ce3rwkKEv2GfKeF"], VECTOR_T) == "mismatch"


def test_real_vector_181_seconds_later_is_stale(vector_body: bytes) -> None:
    assert _reason(vector_body, VECTOR_HEADER, [VECTOR_SECRET], VECTOR_T + 181_000) == "stale"


def test_sign_reproduces_the_real_vector_header_exactly(vector_body: bytes) -> None:
    assert sign(vector_body, VECTOR_SECRET, VECTOR_T) == VECTOR_HEADER


# --- the official SDK as an oracle --------------------------------------------------------------------


@pytest.fixture(scope="module")
def sdk_webhooks() -> Iterator[Any]:
    # Building the client makes no request; `with` closes the HTTP client it owns (warnings are errors).
    with WorkOSClient(api_key="x") as client:
        yield client.webhooks


def _sdk_accepts(webhooks: Any, body: bytes, header: str, secret: bytes, tolerance_s: int) -> bool:
    try:
        webhooks.verify_header(event_body=body, event_signature=header, secret=secret.decode(), tolerance=tolerance_s)
    except ValueError:
        return False
    return True


UNICODE_BODY = '{"id":"event_1","event":"x","data":{"name":"Zoë 🦊 Łódź — 東京"}}'.encode()

# (presented body, signed body, signing secret, checking secret, age in seconds, tamper digest, accepted)
ORACLE_CASES = {
    "valid": (BODY, BODY, SECRET, SECRET, 0, False, True),
    "wrong_secret": (BODY, BODY, SECRET, OLD_SECRET, 0, False, False),
    "tampered_body": (BODY.replace(b"created", b"deleted"), BODY, SECRET, SECRET, 0, False, False),
    "stale_10_min": (BODY, BODY, SECRET, SECRET, 600, False, False),
    "future_10_min": (BODY, BODY, SECRET, SECRET, -600, False, False),
    "60_s_old": (BODY, BODY, SECRET, SECRET, 60, False, True),
    "60_s_ahead": (BODY, BODY, SECRET, SECRET, -60, False, True),
    "empty_body": (b"", b"", SECRET, SECRET, 0, False, True),
    "unicode_body": (UNICODE_BODY, UNICODE_BODY, SECRET, SECRET, 0, False, True),
    "wrong_hex": (BODY, BODY, SECRET, SECRET, 0, True, False),
}


@pytest.mark.parametrize(
    ("presented", "signed", "signing_secret", "checking_secret", "age_s", "tamper_digest", "accepted"),
    list(ORACLE_CASES.values()),
    ids=list(ORACLE_CASES),
)
def test_agrees_with_the_official_sdk(
    sdk_webhooks: Any,
    presented: bytes,
    signed: bytes,
    signing_secret: bytes,
    checking_secret: bytes,
    age_s: int,
    tamper_digest: bool,
    accepted: bool,
) -> None:
    # The SDK reads time.time() itself; every age is >= 60 s away from the 180 s boundary, so the few ms
    # between our clock read and its own cannot flip an outcome.
    now_ms = time.time_ns() // 1_000_000
    header = sign(signed, signing_secret, now_ms - age_s * 1000)
    if tamper_digest:
        digest = _digest(header)
        header = header.replace(digest, digest[::-1])

    try:
        verify_signature(presented, header, [checking_secret], now_ms=now_ms, tolerance_ms=180 * 1000)
        ours = True
    except SignatureError:
        ours = False
    theirs = _sdk_accepts(sdk_webhooks, presented, header, checking_secret, tolerance_s=180)

    assert (ours, theirs) == (accepted, accepted)


def test_sdk_accepts_the_real_vector_too(sdk_webhooks: Any, vector_body: bytes) -> None:
    # The SDK has no injectable clock, so the tolerance is widened to cover the vector's age plus a day.
    age_s = int(time.time() - VECTOR_T / 1000)

    assert _sdk_accepts(sdk_webhooks, vector_body, VECTOR_HEADER, VECTOR_SECRET, tolerance_s=age_s + 86_400)


# --- tolerance beyond what the SDK reads --------------------------------------------------------------


@pytest.fixture(scope="module")
def digest() -> str:
    return _digest(sign(BODY, SECRET, T))


def _accepts(header: str, secrets: list[bytes] | None = None) -> bool:
    checking = [SECRET] if secrets is None else secrets
    return verify_signature(BODY, header, checking, now_ms=T, tolerance_ms=TOLERANCE_MS) == T


def test_fields_in_any_order(digest: str) -> None:
    assert _accepts(f"v1={digest}, t={T}")


def test_no_spaces_after_commas(digest: str) -> None:
    assert _accepts(f"t={T},v1={digest}")


def test_extra_spaces_around_fields_and_equals(digest: str) -> None:
    assert _accepts(f"  t = {T} ,   v1 =  {digest}  ")


def test_any_of_several_v1_may_match(digest: str) -> None:
    other = "0" * 64
    assert _accepts(f"t={T}, v1={other}, v1={digest}")
    assert _accepts(f"t={T}, v1={digest}, v1={other}")


def test_unknown_scheme_is_ignored(digest: str) -> None:
    assert _accepts(f"t={T}, v0={'f' * 64}, v1={digest}")
    assert _accepts(f"t={T}, v0=not-even-hex, v1={digest}, v2=later")


def test_invalid_v1_beside_a_valid_one_is_dropped(digest: str) -> None:
    assert _accepts(f"t={T}, v1=zz, v1={digest}, v1={digest}00")


def test_repeated_identical_t_is_fine(digest: str) -> None:
    assert _accepts(f"t={T}, v1={digest}, t={T}")


def test_uppercase_hex_accepted(digest: str) -> None:
    assert _accepts(f"t={T}, v1={digest.upper()}")


def test_secret_rotation_accepts_old_and_new_rejects_a_third() -> None:
    rotation = [SECRET, OLD_SECRET]

    assert _accepts(sign(BODY, SECRET, T), rotation)
    assert _accepts(sign(BODY, OLD_SECRET, T), rotation)
    assert _reason(BODY, sign(BODY, b"whsec_stranger", T), rotation) == "mismatch"


def test_no_secrets_is_mismatch() -> None:
    assert _reason(BODY, sign(BODY, SECRET, T), []) == "mismatch"


def test_parse_normalises_digests_to_lower_case(digest: str) -> None:
    parsed = parse_signature_header(f"v1={digest.upper()},t={T},v0=abc")

    assert parsed == SignatureHeader(timestamp_ms=T, signatures=(digest,))


# --- every reason code --------------------------------------------------------------------------------

GOOD_HEX = "a" * 64
MALFORMED_HEADERS = {
    "garbage": "definitely not a signature header",
    "whitespace_only": "   ",
    "huge": f"t={T}, v1={GOOD_HEX}, " + "x" * MAX_HEADER_LENGTH,
    "no_t": f"v1={GOOD_HEX}",
    "empty_t": f"t=, v1={GOOD_HEX}",
    "no_v1": f"t={T}",
    "only_unknown_scheme": f"t={T}, v0={GOOD_HEX}",
    "v1_not_hex": f"t={T}, v1={'g' * 64}",
    "v1_too_short": f"t={T}, v1={GOOD_HEX[:-1]}",
    "v1_empty": f"t={T}, v1=",
    "non_numeric_t": f"t=yesterday, v1={GOOD_HEX}",
    "negative_t": f"t=-{T}, v1={GOOD_HEX}",
    "plus_sign_t": f"t=+{T}, v1={GOOD_HEX}",
    "fractional_t": f"t={T}.5, v1={GOOD_HEX}",
    "underscored_t": f"t=1_722_443_701_539, v1={GOOD_HEX}",
    "non_ascii_digits_t": f"t=١٧٢٢, v1={GOOD_HEX}",
    "superscript_t": f"t=², v1={GOOD_HEX}",
    "sixteen_digit_t": f"t={'9' * 16}, v1={GOOD_HEX}",
    "conflicting_t": f"t={T}, t={T + 1}, v1={GOOD_HEX}",
}


@pytest.mark.parametrize("header", [None, ""], ids=["none", "empty"])
def test_missing_header(header: str | None) -> None:
    assert _reason(BODY, header, [SECRET]) == "missing_header"


def test_parse_empty_header_is_missing() -> None:
    with pytest.raises(SignatureError) as caught:
        parse_signature_header("")

    assert caught.value.reason == "missing_header"


@pytest.mark.parametrize("header", list(MALFORMED_HEADERS.values()), ids=list(MALFORMED_HEADERS))
def test_malformed_header(header: str) -> None:
    assert _reason(BODY, header, [SECRET]) == "malformed_header"


def test_header_at_the_length_cap_is_still_read(digest: str) -> None:
    header = f"t={T}, v1={digest}, "
    header += "x" * (MAX_HEADER_LENGTH - len(header))

    assert len(header) == MAX_HEADER_LENGTH
    assert _accepts(header)


def test_stale_and_future_boundaries_are_inclusive() -> None:
    header = sign(BODY, SECRET, T)

    def check(now_ms: int) -> int:
        return verify_signature(BODY, header, [SECRET], now_ms=now_ms, tolerance_ms=TOLERANCE_MS)

    assert check(T + TOLERANCE_MS) == T
    assert check(T - TOLERANCE_MS) == T
    assert _reason(BODY, header, [SECRET], T + TOLERANCE_MS + 1) == "stale"
    assert _reason(BODY, header, [SECRET], T - TOLERANCE_MS - 1) == "future"


def test_timestamp_is_checked_before_the_hmac() -> None:
    # A stale header with a bad digest says "stale": the cheap check runs first.
    header = f"t={T}, v1={GOOD_HEX}"

    assert _reason(BODY, header, [SECRET], T + TOLERANCE_MS + 1) == "stale"
    assert _reason(BODY, header, [SECRET], T - TOLERANCE_MS - 1) == "future"
    assert _reason(BODY, header, [SECRET], T) == "mismatch"


@pytest.mark.parametrize("timestamp_ms", [-1, 10**15])
def test_sign_refuses_a_timestamp_the_parser_would_reject(timestamp_ms: int) -> None:
    with pytest.raises(ValueError, match="timestamp_ms"):
        sign(BODY, SECRET, timestamp_ms)


# --- properties ---------------------------------------------------------------------------------------

TIMESTAMPS = st.integers(min_value=0, max_value=10**15 - 1)


@PROPERTY
@given(body=st.binary(max_size=4096), secret=st.binary(max_size=64), timestamp_ms=TIMESTAMPS)
def test_sign_then_verify_round_trips(body: bytes, secret: bytes, timestamp_ms: int) -> None:
    header = sign(body, secret, timestamp_ms)

    assert verify_signature(body, header, [secret], now_ms=timestamp_ms, tolerance_ms=0) == timestamp_ms


@PROPERTY
@given(body=st.binary(max_size=256), secret=st.binary(max_size=64), other=st.binary(max_size=64))
def test_another_secret_never_verifies(body: bytes, secret: bytes, other: bytes) -> None:
    # HMAC pads keys shorter than a block with zeros, so b"k" and b"k\x00" are the same key; skip those.
    assume(other.rstrip(b"\x00") != secret.rstrip(b"\x00"))
    header = sign(body, secret, T)

    assert _reason(body, header, [other]) == "mismatch"


@PROPERTY
@given(body=st.binary(max_size=64), secret=st.binary(max_size=16), timestamp_ms=TIMESTAMPS)
def test_canonical_fast_path_agrees_with_the_tolerant_parser(body: bytes, secret: bytes, timestamp_ms: int) -> None:
    # WorkOS's exact format takes a fast path; the same fields in another shape take the general parser.
    header = sign(body, secret, timestamp_ms)
    reshaped = header.replace(", ", ",")

    assert parse_signature_header(header) == parse_signature_header(reshaped)
    assert parse_signature_header(header).timestamp_ms == timestamp_ms


def _outcome(header: str) -> str:
    # Anything but a SignatureError escapes and fails the property.
    try:
        verify_signature(BODY, header, [SECRET], now_ms=T, tolerance_ms=TOLERANCE_MS)
    except SignatureError as exc:
        return exc.reason
    return "verified"


OUTCOMES = {"missing_header", "malformed_header", "stale", "future", "mismatch", "verified"}


@PROPERTY
@given(header=st.text())
def test_any_text_header_raises_only_signature_error(header: str) -> None:
    assert _outcome(header) in OUTCOMES


HEADER_FIELDS = st.one_of(
    st.tuples(st.sampled_from(["t", " t", "v1", "v1 ", "v0", "T", "", "x"]), st.text(max_size=80)),
    st.tuples(st.just("t"), st.integers(min_value=-(10**20), max_value=10**20).map(str)),
    st.tuples(st.just("v1"), st.text(alphabet="0123456789abcdefABCDEF", min_size=62, max_size=66)),
)


@PROPERTY
@given(fields=st.lists(HEADER_FIELDS, max_size=8), separator=st.sampled_from([",", ", ", " ,", ",,"]))
def test_header_like_text_raises_only_signature_error(fields: list[tuple[str, str]], separator: str) -> None:
    assert _outcome(separator.join(f"{key}={value}" for key, value in fields)) in OUTCOMES
