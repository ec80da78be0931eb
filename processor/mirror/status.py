"""An organization's setup status, from the mirror: is SSO connected, is a directory syncing, since when, how
many users and groups, and when the last event came. The app's (and `hookyard orgs`'s) answer to "did the
customer finish Admin Portal setup?"."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy

from processor.mirror.schema import (
    connections,
    directories,
    directory_groups,
    directory_users,
    organization_domains,
    organizations,
)

__all__ = ["OrganizationStatus", "mirror_engine", "organization_page", "organization_status", "organization_statuses"]

# Which of several connections or directories an organization's status shows: the best state, then the newest.
_STATE_RANK = {"active": 3, "validating": 2, "inactive": 1}


@dataclass(frozen=True, slots=True)
class OrganizationStatus:
    """What the mirror knows about one organization's SSO and Directory Sync setup."""

    organization_id: str
    name: str | None
    domains: tuple[str, ...]
    sso_state: str | None  # "active" | "inactive" | "validating" | None when it has no connection
    sso_connection_type: str | None  # e.g. "OktaSAML"
    sso_since: datetime | None  # when the connection entered sso_state (issued time of that event)
    directory_state: str | None  # "active" | "inactive" | "validating" | "deleting" | None when none
    directory_type: str | None
    directory_since: datetime | None
    users: int  # active directory users in the org's directories
    groups: int
    last_event_type: str | None
    last_event_at: datetime | None  # issued time of the newest event applied for this organization
    last_sync_at: datetime | None  # newest dsync.* event applied for this organization
    connections: int = 0  # connections that are not deleted
    directories: int = 0  # directories that are not deleted
    deleted_at: datetime | None = None  # when WorkOS deleted the organization (organization.deleted)


def mirror_engine(url: str) -> sqlalchemy.Engine:
    """An engine for the mirror database at `url` (a SQLAlchemy URL, e.g. `postgresql+psycopg://...`)."""
    options: dict[str, Any] = {}
    if sqlalchemy.make_url(url).get_backend_name() == "postgresql":
        # An unreachable server fails a write (retried) or a verb in seconds rather than hanging it.
        options["connect_args"] = {"connect_timeout": 10}
    return sqlalchemy.create_engine(url, pool_pre_ping=True, **options)


def organization_statuses(
    engine: sqlalchemy.Engine, *, limit: int = 50, after: str | None = None, search: str | None = None
) -> list[OrganizationStatus]:
    """Ordered by organization_id; `after` is a cursor (the last organization_id of the previous page);
    `search` matches organization id, name or a domain (case-insensitive substring)."""
    return organization_page(engine, limit=limit, after=after, search=search)[0]


def organization_page(
    engine: sqlalchemy.Engine,
    *,
    limit: int = 50,
    after: str | None = None,
    search: str | None = None,
    scan_limit: int | None = None,
) -> tuple[list[OrganizationStatus], str | None]:
    """`organization_statuses`, reading at most `scan_limit` organizations the SQL filter let through (None: no
    bound); also the cursor to go on from (None: nothing further)."""
    if limit <= 0:
        return [], None
    needle = search.strip().lower() if search else ""
    found: list[OrganizationStatus] = []
    cursor = after
    scanned = 0
    with engine.connect() as conn:
        while len(found) < limit:
            # The SQL filter may match too much (domains kept as JSON are searched as text); the exact check
            # is on the built status, so pages are read until `limit` statuses pass it or the scan bound.
            batch = limit if scan_limit is None else min(limit, scan_limit - scanned)
            if batch <= 0:
                return found, cursor
            query = sqlalchemy.select(organizations.c.id).order_by(organizations.c.id).limit(batch)
            if cursor is not None:
                query = query.where(organizations.c.id > cursor)
            if needle:
                query = query.where(_search_clause(needle))
            ids = list(conn.scalars(query))
            if not ids:
                return found, None
            scanned += len(ids)
            for status in _statuses(conn, ids):
                if not needle or _matches(status, needle):
                    found.append(status)
            cursor = ids[-1]
    return found[:limit], found[limit - 1].organization_id


def organization_status(engine: sqlalchemy.Engine, organization_id: str) -> OrganizationStatus | None:
    """One organization's status, or None when the mirror has never heard of it."""
    with engine.connect() as conn:
        statuses = _statuses(conn, [organization_id])
    return statuses[0] if statuses else None


def _search_clause(needle: str) -> sqlalchemy.ColumnElement[bool]:
    pattern = f"%{_escape(needle)}%"
    org_id = organizations.c.id

    def json_text(table: sqlalchemy.Table) -> sqlalchemy.Exists:
        return sqlalchemy.exists().where(
            table.c.organization_id == org_id,
            table.c.deleted_at.is_(None),
            sqlalchemy.cast(table.c.domains, sqlalchemy.Text).ilike(pattern, escape="\\"),
        )

    return sqlalchemy.or_(
        org_id.ilike(pattern, escape="\\"),
        organizations.c.name.ilike(pattern, escape="\\"),
        sqlalchemy.exists().where(
            organization_domains.c.organization_id == org_id,
            organization_domains.c.deleted_at.is_(None),
            organization_domains.c.domain.ilike(pattern, escape="\\"),
        ),
        # A domain name holds letters, digits, dots and dashes only: JSON punctuation in the needle would match
        # the JSON text of every row and no domain, so then the JSON columns are not searched at all.
        *((json_text(connections), json_text(directories)) if _DOMAIN_TEXT.fullmatch(needle) else ()),
    )


_DOMAIN_TEXT = re.compile(r"[a-z0-9.\-]+")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _matches(status: OrganizationStatus, needle: str) -> bool:
    haystack = (status.organization_id, status.name or "", *status.domains)
    return any(needle in text.lower() for text in haystack)


def _statuses(conn: sqlalchemy.Connection, ids: Sequence[str]) -> list[OrganizationStatus]:
    orgs = {row.id: row for row in conn.execute(sqlalchemy.select(organizations).where(organizations.c.id.in_(ids)))}
    if not orgs:
        return []
    wanted = list(orgs)
    domains: dict[str, set[str]] = {org_id: set() for org_id in wanted}
    for row in conn.execute(
        sqlalchemy.select(organization_domains.c.organization_id, organization_domains.c.domain).where(
            organization_domains.c.organization_id.in_(wanted), organization_domains.c.deleted_at.is_(None)
        )
    ):
        domains[row.organization_id].add(row.domain)
    conns = _by_org(conn.execute(sqlalchemy.select(connections).where(connections.c.organization_id.in_(wanted))))
    dirs = _by_org(conn.execute(sqlalchemy.select(directories).where(directories.c.organization_id.in_(wanted))))
    alive_dirs = [row.id for rows in dirs.values() for row in rows if row.deleted_at is None]
    users = _count_by_directory(conn, directory_users, alive_dirs, active_only=True)
    groups = _count_by_directory(conn, directory_groups, alive_dirs, active_only=False)
    statuses = []
    for org_id in sorted(orgs):
        org = orgs[org_id]
        org_conns, org_dirs = conns.get(org_id, []), dirs.get(org_id, [])
        live_conns = [row for row in org_conns if row.deleted_at is None]
        live_dirs = [row for row in org_dirs if row.deleted_at is None]
        for row in (*live_conns, *live_dirs):
            domains[org_id].update(_domain_names(row.domains))
        sso, directory = _best(live_conns), _best(live_dirs)
        last = _newest([org, *org_conns, *org_dirs])
        last_sync = _newest(org_dirs)
        statuses.append(
            OrganizationStatus(
                organization_id=org_id,
                name=org.name,
                domains=tuple(sorted(domains[org_id])),
                sso_state=sso.state if sso is not None else None,
                sso_connection_type=sso.connection_type if sso is not None else None,
                sso_since=sso.state_since if sso is not None else None,
                directory_state=directory.state if directory is not None else None,
                directory_type=directory.type if directory is not None else None,
                directory_since=directory.state_since if directory is not None else None,
                users=sum(users.get(row.id, 0) for row in live_dirs),
                groups=sum(groups.get(row.id, 0) for row in live_dirs),
                last_event_type=last.last_event_type if last is not None else None,
                last_event_at=last.last_event_at if last is not None else None,
                last_sync_at=last_sync.last_event_at if last_sync is not None else None,
                connections=len(live_conns),
                directories=len(live_dirs),
                deleted_at=org.deleted_at,
            )
        )
    return statuses


def _by_org(rows: Iterable[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.organization_id, []).append(row)
    return grouped


def _count_by_directory(
    conn: sqlalchemy.Connection, table: sqlalchemy.Table, directory_ids: list[str], *, active_only: bool
) -> dict[str, int]:
    if not directory_ids:
        return {}
    query = (
        sqlalchemy.select(table.c.directory_id, sqlalchemy.func.count())
        .where(table.c.directory_id.in_(directory_ids), table.c.deleted_at.is_(None))
        .group_by(table.c.directory_id)
    )
    if active_only:
        query = query.where(table.c.state == "active")
    return {directory_id: int(count) for directory_id, count in conn.execute(query)}


def _best(rows: list[Any]) -> Any | None:
    if not rows:
        return None
    return max(rows, key=lambda row: (_STATE_RANK.get(row.state or "", 0), row.version, row.id))


def _newest(rows: list[Any]) -> Any | None:
    seen = [row for row in rows if row.last_event_version]
    return max(seen, key=lambda row: row.last_event_version) if seen else None


def _domain_names(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item["domain"] for item in value if isinstance(item, dict) and isinstance(item.get("domain"), str)]
