"""`hookyard doctor`: is this installation able to keep its promises? One line per check, exit 1 if any fails."""

from __future__ import annotations

import argparse
import sys
import time

from processor.cli import checks
from processor.cli.arguments import Verbs
from processor.cli.checks import Check
from processor.cli.config import settings_for_redis
from processor.cli.output import Marks, print_json, say
from processor.cli.redis_access import connect

__all__ = ["add_parser"]


def add_parser(verbs: Verbs) -> None:
    doctor = verbs.add_parser(
        "doctor",
        help="check secrets, Redis, handlers and workers",
        description=(
            "Check what Hookyard's guarantees rest on: every source has a valid secret (counts and expiry "
            "shown, never the secret), Redis answers, runs with appendonly yes and maxmemory-policy "
            "noeviction, its clock agrees with this machine's (a warning above 1 s), every handler module "
            "imports, and workers are alive. One line per check (✓ ok, ! warning, ✗ failure, - skipped) with a "
            "hint. Exits 0 when nothing failed, 1 otherwise; warnings do not fail."
        ),
    )
    doctor.add_argument("--json", action="store_true", help="print one JSON document")
    doctor.set_defaults(run=_run)


def _run(args: argparse.Namespace, environ: dict[str, str]) -> int:
    settings = settings_for_redis(environ)
    now_ms = int(time.time() * 1000)
    found = [checks.check_secrets(settings, now_ms)]
    unreachable = "Redis did not answer"
    with connect(settings) as client:
        reachable, info = checks.check_redis(client, settings)
        found.append(reachable)
        if info is None:
            found += [Check(name, "skip", unreachable) for name in ("persistence", "eviction", "clock")]
        else:
            found += [
                checks.check_persistence(client, info),
                checks.check_eviction(client, info),
                checks.check_clock(client),
            ]
        found.append(checks.check_handlers(settings))
        found.append(
            checks.check_workers(client, now_ms) if info is not None else Check("workers", "skip", unreachable)
        )
    ok = not any(check.status == "fail" for check in found)
    if args.json:
        print_json(
            {
                "ok": ok,
                "checks": [
                    {"name": c.name, "status": c.status, "detail": c.detail, "hint": c.hint or None} for c in found
                ],
            }
        )
    else:
        marks = Marks(sys.stdout)
        width = max(len(c.name) for c in found)
        for check in found:
            mark = {"ok": marks.ok, "warn": marks.warn, "fail": marks.fail, "skip": marks.skip}[check.status]
            line = f"{mark} {check.name.ljust(width)}  {check.detail}"
            say(line + (f" {marks.dash} {check.hint}" if check.hint else ""))
    return 0 if ok else 1
