"""`hookyard mirror migrate`: create or update the WorkOS mirror's tables (Alembic, shipped in the package), and
where the mirror is for verbs run beside a `hookyard dev` (its SQLite file in the data directory)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from alembic.util.exc import CommandError
from sqlalchemy.exc import DBAPIError

from processor.cli.arguments import Verbs
from processor.cli.context import settings_without_redis, without_password
from processor.cli.render import say
from processor.mirror import migrate
from processor.mirror.status import mirror_engine
from shared.errors import ConfigError, HookyardError
from shared.settings import Settings

__all__ = [
    "DEV_MIRROR_FILE",
    "add_parser",
    "configured_mirror_url",
    "dev_mirror_url",
    "migrate_mirror",
    "mirror_revision",
    "mirror_url_for",
]

#: The mirror `hookyard dev` keeps when HOOKYARD_MIRROR_URL is not set, in its data directory.
DEV_MIRROR_FILE = "mirror.sqlite3"


def add_parser(verbs: Verbs) -> None:
    parser = verbs.add_parser(
        "mirror",
        help="manage the WorkOS mirror database (HOOKYARD_MIRROR_URL)",
        description="Manage the database of the built-in WorkOS mirror (docs/mirror.md).",
    )
    actions = parser.add_subparsers(dest="action", metavar="<action>", required=True)
    run = actions.add_parser(
        "migrate",
        help="create or update the mirror's tables",
        description=(
            "Run the mirror's Alembic migrations up to the newest revision (or --to REVISION) on the database "
            "HOOKYARD_MIRROR_URL names (beside a `hookyard dev`, its SQLite file in the data directory). "
            "Safe to run again: a database already at the revision is left as it is."
        ),
    )
    run.add_argument("--to", default="head", metavar="REVISION", help="the revision to reach (default: head)")
    run.set_defaults(run=_migrate)


def _migrate(args: argparse.Namespace, environ: dict[str, str]) -> int:
    url = mirror_url_for(settings_without_redis(environ))
    before, after = migrate_mirror(url, args.to)
    where = without_password(url)
    say(f"mirror at {where}: {before or 'empty'} -> {after}" if before != after else f"mirror at {where}: {after}")
    return 0


def dev_mirror_url(data_dir: Path) -> str:
    """The SQLAlchemy URL of the dev mirror file in `data_dir` (absolute: the children may chdir)."""
    return f"sqlite:///{(data_dir / DEV_MIRROR_FILE).absolute()}"


def configured_mirror_url(settings: Settings) -> str | None:
    """HOOKYARD_MIRROR_URL, or the mirror of a `hookyard dev` on the same data directory, or None."""
    if settings.mirror_url:
        return settings.mirror_url
    if (Path(settings.data_dir) / DEV_MIRROR_FILE).exists():
        return dev_mirror_url(Path(settings.data_dir))
    return None


def mirror_url_for(settings: Settings) -> str:
    """`configured_mirror_url`, or a configuration error naming the setting."""
    url = configured_mirror_url(settings)
    if url is None:
        dev_file = Path(settings.data_dir) / DEV_MIRROR_FILE
        raise ConfigError(
            "HOOKYARD_MIRROR_URL", f"not set (e.g. postgresql+psycopg://host/db), and no dev mirror in {dev_file}"
        )
    return url


def mirror_revision(url: str) -> str | None:
    """The revision the mirror's database is at (None: never migrated); `HookyardError` when it does not answer."""
    engine = mirror_engine(url)
    try:
        return migrate.current_revision(engine)
    except DBAPIError as exc:
        raise HookyardError(f"the mirror database at {without_password(url)} did not answer: {_reason(exc)}") from None
    finally:
        engine.dispose()


def migrate_mirror(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the mirror at `url`; returns the revisions before and after."""
    # Alembic narrates every step at INFO ("Context impl SQLiteImpl."): the caller says what happened instead.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    engine = mirror_engine(url)
    try:
        before = migrate.current_revision(engine)
        migrate.upgrade(engine, revision)
        return before, migrate.current_revision(engine)
    except DBAPIError as exc:
        raise HookyardError(f"the mirror database at {without_password(url)} refused: {_reason(exc)}") from None
    except CommandError as exc:
        raise HookyardError(f"cannot migrate the mirror to {revision!r}: {exc}") from None
    finally:
        engine.dispose()


def _reason(exc: DBAPIError) -> str:
    return " ".join(str(exc.orig).split())[:300] if exc.orig is not None else type(exc).__name__
