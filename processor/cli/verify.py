"""`hookyard verify`: check a `WorkOS-Signature` against a body, offline, and say why it fails — the question an
operator has when a sender's deliveries keep getting 401."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from processor.cli.arguments import Verbs, duration, source_name
from processor.cli.context import settings_without_redis
from processor.cli.render import age, iso, print_json, say
from shared.clock import wall_ms
from shared.errors import ConfigError, HookyardError, SignatureError
from shared.settings import DEFAULT_SOURCE
from shared.signature import parse_signature_header, verify_signature

__all__ = ["add_parser"]

_DEFAULT_TOLERANCE_S = 180.0
# A header pasted whole from a request log: "WorkOS-Signature: t=..., v1=...".
_HEADER_NAME = re.compile(r"^\s*workos-signature\s*:\s*", re.IGNORECASE)


def add_parser(verbs: Verbs) -> None:
    verify = verbs.add_parser(
        "verify",
        help="check a WorkOS-Signature header against a body",
        description=(
            "Verify HEADER (the WorkOS-Signature value, t=<ms>, v1=<hex>) against the exact bytes of a body, as "
            "the receiver does. Prints 'valid (signed at ..., age ...)', or 'invalid: <reason>' where reason is "
            "missing_header, malformed_header, stale, future or mismatch (checked in that order). Exits 0 when "
            "valid, 1 when not."
        ),
    )
    verify.add_argument(
        "--secret",
        action="append",
        metavar="S",
        help="signing secret; repeat for a rotation (default: the source's configured secrets)",
    )
    verify.add_argument("--header", required=True, metavar="H", help="the WorkOS-Signature header value")
    verify.add_argument("--body-file", type=Path, metavar="F", help="file holding the body's exact bytes")
    verify.add_argument("stdin", nargs="?", choices=("-",), metavar="-", help="read the body from stdin")
    verify.add_argument(
        "--tolerance",
        type=duration,
        default=_DEFAULT_TOLERANCE_S,
        metavar="T",
        help="how far the signing time may be from now, e.g. 180, 5m (default 180 s)",
    )
    verify.add_argument(
        "--source", default=DEFAULT_SOURCE, type=source_name, help="whose secrets to use without --secret"
    )
    verify.add_argument("--json", action="store_true", help="print one JSON document")
    verify.set_defaults(run=_run, parser=verify)


def _run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    if (args.body_file is None) == (args.stdin is None):
        args.parser.error("give the body with --body-file F or as '-' on stdin (one of them)")
    body = sys.stdin.buffer.read() if args.stdin else _read(args.body_file)
    secrets = [s.encode() for s in args.secret] if args.secret else _configured_secrets(environ, args.source)
    header = _HEADER_NAME.sub("", args.header).strip()
    now_ms = wall_ms()
    result = _verify(body, header, secrets, now_ms=now_ms, tolerance_s=args.tolerance)
    if args.json:
        print_json(result)
    else:
        say(_describe(result))
    return 0 if result["valid"] else 1


def _verify(body: bytes, header: str, secrets: list[bytes], *, now_ms: int, tolerance_s: float) -> dict[str, Any]:
    result: dict[str, Any] = {
        "valid": False,
        "reason": None,
        "detail": None,
        "signed_at": None,
        "age_s": None,
        "tolerance_s": tolerance_s,
        "signature_matches": None,
    }
    try:
        signed_ms = verify_signature(body, header, secrets, now_ms=now_ms, tolerance_ms=int(tolerance_s * 1000))
    except SignatureError as exc:
        result.update(reason=exc.reason, detail=exc.detail or None)
        if exc.reason in ("stale", "future"):
            # A time failure says nothing about the bytes: tell the operator whether they would verify in time.
            signed_ms = parse_signature_header(header).timestamp_ms
            result.update(signed_at=iso(signed_ms), age_s=(now_ms - signed_ms) / 1000)
            result["signature_matches"] = _matches_ignoring_time(body, header, secrets, signed_ms)
        return result
    result.update(valid=True, signed_at=iso(signed_ms), age_s=(now_ms - signed_ms) / 1000, signature_matches=True)
    return result


def _matches_ignoring_time(body: bytes, header: str, secrets: list[bytes], signed_ms: int) -> bool:
    try:
        verify_signature(body, header, secrets, now_ms=signed_ms, tolerance_ms=0)
    except SignatureError:
        return False
    return True


def _describe(result: dict[str, Any]) -> str:
    if result["valid"]:
        return f"valid (signed at {result['signed_at']}, age {age(result['age_s'])})"
    line = f"invalid: {result['reason']}"
    if result["detail"]:
        line += f" ({result['detail']})"
    if result["signed_at"] is not None:
        matches = "the HMAC matches" if result["signature_matches"] else "the HMAC does not match either"
        line += (
            f"; signed at {result['signed_at']}, age {age(result['age_s'])}, "
            f"tolerance {result['tolerance_s']:g} s; {matches}"
        )
    return line


def _configured_secrets(environ: dict[str, str], source: str) -> list[bytes]:
    settings = settings_without_redis(environ)
    config = settings.sources.get(source)
    secrets = list(config.secrets_at(wall_ms())) if config is not None else []
    if not secrets:
        setting = (
            "WORKOS_WEBHOOK_SECRET"
            if source == DEFAULT_SOURCE
            else "HOOKYARD_SOURCE_" + source.upper().replace("-", "_") + "_SECRETS"
        )
        raise ConfigError(setting, f"no valid secret configured for source {source!r}; pass --secret")
    return secrets


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise HookyardError(f"cannot read {path}: {exc.strerror}") from None
