"""`hookyard orgs` and `hookyard org ORG_ID`: each organization's SSO and Directory Sync setup as the WorkOS
mirror has it — connection state and since when, directory state, user and group counts, the last event and the
last sync. The integrator's answer to "did the customer finish Admin Portal setup?"."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError

from processor.cli.arguments import Verbs, positive_int
from processor.cli.context import settings_without_redis, without_password
from processor.cli.mirror import mirror_url_for
from processor.cli.render import age, print_json, render_table, say
from processor.mirror.status import OrganizationStatus, mirror_engine, organization_status, organization_statuses
from shared.clock import wall_ms
from shared.errors import HookyardError

__all__ = ["add_org_parser", "add_orgs_parser"]

_HEADERS = ("ORGANIZATION", "NAME", "SSO", "SINCE", "DIRECTORY", "SINCE", "USERS", "GROUPS", "LAST EVENT", "SYNCED")


def add_orgs_parser(verbs: Verbs) -> None:
    parser = verbs.add_parser(
        "orgs",
        help="list organizations: SSO and directory state, users, last event (the WorkOS mirror)",
        description=(
            "List the organizations the WorkOS mirror knows (HOOKYARD_MIRROR_URL, or the mirror of a `hookyard "
            "dev` on the data directory), ordered by id: SSO connection state and since when, directory state "
            "and since when, active directory users, groups, the last event and the last Directory Sync event. "
            "Page with --after (the last id shown)."
        ),
    )
    parser.add_argument("--search", metavar="TEXT", help="only organizations whose id, name or a domain contains TEXT")
    parser.add_argument("--limit", type=positive_int, default=50, metavar="N", help="at most N (default 50)")
    parser.add_argument("--after", metavar="ORG_ID", help="start after this organization id (the next page)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(run=_orgs)


def add_org_parser(verbs: Verbs) -> None:
    parser = verbs.add_parser(
        "org",
        help="one organization's SSO and directory setup (the WorkOS mirror)",
        description=(
            "Show what the WorkOS mirror knows about one organization: its domains, SSO connection (type, state "
            "and since when), directory (type, state and since when), active users and groups, the last event "
            "and the last Directory Sync event. Exits 1 when the mirror has never heard of it."
        ),
    )
    parser.add_argument("organization_id", metavar="ORG_ID", help="the organization id (org_...)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(run=_org)


def _orgs(args: argparse.Namespace, environ: dict[str, str]) -> int:
    url = mirror_url_for(settings_without_redis(environ))
    engine = mirror_engine(url)
    try:
        statuses = organization_statuses(engine, limit=args.limit, after=args.after, search=args.search)
    except DBAPIError as exc:
        raise _unavailable(url, exc) from None
    finally:
        engine.dispose()
    if args.json:
        last = statuses[-1].organization_id if len(statuses) == args.limit else None
        print_json({"organizations": [_document(s) for s in statuses], "next_after": last})
        return 0
    if not statuses:
        say("no organizations in the mirror yet" if not args.search else f"no organization matches {args.search!r}")
        return 0
    now = wall_ms()
    rows = [
        (
            s.organization_id,
            s.name,
            _state(s.sso_state, s.sso_connection_type),
            _ago(s.sso_since, now),
            _state(s.directory_state, s.directory_type),
            _ago(s.directory_since, now),
            s.users,
            s.groups,
            f"{s.last_event_type} {_ago(s.last_event_at, now)}" if s.last_event_type else None,
            _ago(s.last_sync_at, now),
        )
        for s in statuses
    ]
    say(render_table(_HEADERS, rows, right=(6, 7)))
    if len(statuses) == args.limit:
        say(f"\nmore: hookyard orgs --after {statuses[-1].organization_id}")
    return 0


def _org(args: argparse.Namespace, environ: dict[str, str]) -> int:
    url = mirror_url_for(settings_without_redis(environ))
    engine = mirror_engine(url)
    try:
        status = organization_status(engine, args.organization_id)
    except DBAPIError as exc:
        raise _unavailable(url, exc) from None
    finally:
        engine.dispose()
    if status is None:
        raise HookyardError(f"the mirror has no organization {args.organization_id!r} (`hookyard orgs` lists them)")
    if args.json:
        print_json(_document(status))
        return 0
    now = wall_ms()
    lines = [
        ("organization", status.organization_id),
        ("name", status.name),
        ("domains", ", ".join(status.domains) or None),
        ("sso", _with_since(_state(status.sso_state, status.sso_connection_type), status.sso_since, now)),
        ("directory", _with_since(_state(status.directory_state, status.directory_type), status.directory_since, now)),
        ("users", f"{status.users} active"),
        ("groups", str(status.groups)),
        (
            "last event",
            f"{status.last_event_type} at {_when(status.last_event_at, now)}" if status.last_event_type else None,
        ),
        ("last sync", _when(status.last_sync_at, now)),
    ]
    if status.deleted_at is not None:
        lines.append(("deleted", _when(status.deleted_at, now)))
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        say(f"{label.ljust(width)}  {value if value is not None else '-'}")
    return 0


def _state(state: str | None, kind: str | None) -> str | None:
    if state is None:
        return None
    return f"{state} ({kind})" if kind else state


def _ago(when: datetime | None, now_ms: int) -> str | None:
    if when is None:
        return None
    shown = age(now_ms / 1000 - when.timestamp())
    return f"{shown} ago" if shown and not shown.startswith("in ") else shown


def _with_since(what: str | None, when: datetime | None, now_ms: int) -> str | None:
    if what is None:
        return None
    return f"{what}, since {_when(when, now_ms)}" if when is not None else what


def _when(when: datetime | None, now_ms: int) -> str | None:
    return f"{_iso(when)} ({_ago(when, now_ms)})" if when is not None else None


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _document(status: OrganizationStatus) -> dict[str, Any]:
    fields = dataclasses.asdict(status)
    return {name: (_iso(value) if isinstance(value, datetime) else value) for name, value in fields.items()} | {
        "domains": list(status.domains)
    }


def _unavailable(url: str, exc: DBAPIError) -> HookyardError:
    reason = " ".join(str(exc.orig).split())[:300] if exc.orig is not None else type(exc).__name__
    return HookyardError(f"the mirror database at {without_password(url)} did not answer: {reason}")
