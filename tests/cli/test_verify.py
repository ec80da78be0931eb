"""`hookyard verify`: a signature is valid, or the reason it is not (the SignatureError reason code), on the fixed
WorkOS test vector and on signatures made here."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import orjson
import pytest

from processor.cli import main
from shared.signature import sign
from tests.conftest import SAMPLES, TEST_SECRET
from tests.fixtures.cli_state import use_environment

VECTOR_BODY = SAMPLES / "connection.activated.body"
VECTOR_HEADER = "t=1722443701539, v1=bd54a3768f461461c8439c2f97ab0d646ef3976f84d5d5b132d18f2fa89cdad5"
VECTOR_SECRET = "2sAZJlbjP8Ce3rwkKEv2GfKef"
VECTOR_SIGNED_AT = "2024-07-31T16:35:01.539Z"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    use_environment(monkeypatch)


def verify(*extra: str) -> int:
    return main(
        ["verify", "--secret", VECTOR_SECRET, "--header", VECTOR_HEADER, "--body-file", str(VECTOR_BODY), *extra]
    )


def test_the_workos_vector_is_stale_with_the_default_tolerance(capsys: pytest.CaptureFixture[str]) -> None:
    assert verify() == 1

    out = capsys.readouterr().out
    assert out.startswith(f"invalid: stale (signed too long ago); signed at {VECTOR_SIGNED_AT}, age ")
    assert "tolerance 180 s; the HMAC matches" in out


def test_the_workos_vector_is_valid_with_a_huge_tolerance(capsys: pytest.CaptureFixture[str]) -> None:
    assert verify("--tolerance", "36500d") == 0

    out = capsys.readouterr().out
    assert out.startswith(f"valid (signed at {VECTOR_SIGNED_AT}, age ")
    assert out.rstrip().endswith(")")


def test_json_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    assert verify("--json") == 1
    stale = orjson.loads(capsys.readouterr().out)
    assert verify("--json", "--tolerance", "36500d") == 0
    valid = orjson.loads(capsys.readouterr().out)

    assert stale["valid"] is False
    assert stale["reason"] == "stale"
    assert stale["signed_at"] == VECTOR_SIGNED_AT
    assert stale["age_s"] > 365 * 86400
    assert stale["tolerance_s"] == 180
    assert stale["signature_matches"] is True
    assert valid["valid"] is True
    assert valid["reason"] is None
    assert valid["signed_at"] == VECTOR_SIGNED_AT


def test_a_wrong_secret_is_a_mismatch(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "verify", "--secret", "not-the-secret", "--header", VECTOR_HEADER, "--body-file", str(VECTOR_BODY),
            "--tolerance", "36500d",
        ]
    )  # fmt: skip

    assert code == 1
    assert capsys.readouterr().out == "invalid: mismatch (no v1 matches any secret)\n"


def test_a_stale_signature_with_a_wrong_secret_says_the_hmac_does_not_match_either(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["verify", "--secret", "not-the-secret", "--header", VECTOR_HEADER, "--body-file", str(VECTOR_BODY)])

    assert code == 1
    out = capsys.readouterr().out
    assert out.startswith("invalid: stale")
    assert "the HMAC does not match either" in out


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("", "missing_header"),
        ("t=abc, v1=xyz", "malformed_header"),
        ("v1=" + "0" * 64, "malformed_header"),
    ],
)
def test_header_problems(header: str, reason: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", "--secret", VECTOR_SECRET, "--header", header, "--body-file", str(VECTOR_BODY), "--json"])

    assert code == 1
    assert orjson.loads(capsys.readouterr().out)["reason"] == reason


def test_a_signature_from_the_future(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = b'{"id":"event_1","event":"dsync.user.created","data":{}}'
    (tmp_path / "body").write_bytes(body)
    header = sign(body, TEST_SECRET.encode(), int(time.time() * 1000) + 3_600_000)

    code = main(["verify", "--secret", TEST_SECRET, "--header", header, "--body-file", str(tmp_path / "body")])

    assert code == 1
    out = capsys.readouterr().out
    assert out.startswith("invalid: future (signed in the future); signed at ")
    assert ", age in 59m" in out or ", age in 1h" in out


def test_body_from_stdin_configured_secret_and_a_pasted_header(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the secret in the environment, the body on stdin and the header copied with its name
    monkeypatch.setenv("WORKOS_WEBHOOK_SECRET", TEST_SECRET)
    body = b'{"id":"event_2","event":"dsync.deleted","data":{}}\n'
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(body)))
    header = "WorkOS-Signature: " + sign(body, TEST_SECRET.encode(), int(time.time() * 1000))

    # Then it verifies
    assert main(["verify", "--header", header, "-"]) == 0
    assert capsys.readouterr().out.startswith("valid (signed at ")


def test_any_byte_changed_is_a_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tampered = tmp_path / "body"
    tampered.write_bytes(VECTOR_BODY.read_bytes().replace(b"connection", b"Connection", 1))

    code = main(
        [
            "verify", "--secret", VECTOR_SECRET, "--header", VECTOR_HEADER, "--body-file", str(tampered),
            "--tolerance", "36500d",
        ]
    )  # fmt: skip

    assert code == 1
    assert capsys.readouterr().out.startswith("invalid: mismatch")


def test_without_a_secret_anywhere_it_names_the_setting(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--header", VECTOR_HEADER, "--body-file", str(VECTOR_BODY)]) == 2
    assert capsys.readouterr().err.startswith("hookyard: configuration error: WORKOS_WEBHOOK_SECRET: ")


def test_an_unreadable_body_file_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "--secret", VECTOR_SECRET, "--header", VECTOR_HEADER, "--body-file", "nope"]) == 1
    assert capsys.readouterr().err == "hookyard verify: cannot read nope: No such file or directory\n"
