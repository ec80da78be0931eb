"""The `hookyard` command: run everything locally (`dev`), send and verify signed events (`send`, `verify`),
look after a running installation (`doctor`, `stats`, `events`, `dlq`, `handlers`, `reconcile`, `console`), read
the WorkOS mirror (`orgs`, `org`, `mirror migrate`), and start the production processes (`receiver`, `worker`).

This is the entry point that reads the process environment (once, in `main`); every verb below it is handed a
plain mapping and goes through `Settings` for what Hookyard itself configures. Each verb (or verb group) lives
in a module of its own that registers its parser with `add_parser(verbs)`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from processor.cli.arguments import Run, Verbs
from processor.cli.render import warnings_as_lines
from processor.stats import hookyard_version
from shared.errors import ConfigError, HookyardError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run one `hookyard` verb; returns the process exit code (2 for a configuration error)."""
    warnings_as_lines()
    parser = build_parser()
    args = parser.parse_args(argv)
    environ = dict(os.environ)
    run: Run = args.run
    try:
        return run(args, environ)
    except ConfigError as exc:
        print(f"hookyard: configuration error: {exc.setting}: {exc.problem}", file=sys.stderr)
        return 2
    except HookyardError as exc:
        print(f"hookyard {args.verb}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `hookyard events list | head`: the reader left; stop quietly, and keep Python from complaining
        # about the unflushable stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hookyard",
        description="Receive WorkOS webhooks and dispatch them to handlers, in order, exactly once.",
        epilog="`hookyard <verb> --help` says more about each verb.",
    )
    parser.add_argument("--version", action="version", version=f"hookyard {hookyard_version() or '(not installed)'}")
    verbs = parser.add_subparsers(dest="verb", metavar="<verb>", required=True)
    for add_verb in _verbs():
        add_verb(verbs)
    return parser


def _verbs() -> tuple[Callable[[Verbs], None], ...]:
    # The verbs, in the order `hookyard --help` lists them: running, sending, looking after, production entry
    # points, and the shell's completion. Imported here, not with the package: modules outside the CLI (the
    # console) use some of its modules, and must not pull in every verb, or import them in a circle.
    from processor.cli.completion import add_parser as add_completion
    from processor.cli.console import add_parser as add_console
    from processor.cli.dev import add_parser as add_dev
    from processor.cli.dlq import add_parser as add_dlq
    from processor.cli.doctor import add_parser as add_doctor
    from processor.cli.events import add_parser as add_events
    from processor.cli.handlers import add_parser as add_handlers
    from processor.cli.mirror import add_parser as add_mirror
    from processor.cli.orgs import add_org_parser, add_orgs_parser
    from processor.cli.reconcile import add_parser as add_reconcile
    from processor.cli.send import add_parser as add_send
    from processor.cli.servers import add_receiver_parser, add_worker_parser
    from processor.cli.stats import add_parser as add_stats
    from processor.cli.verify import add_parser as add_verify

    return (
        add_dev,
        add_send,
        add_verify,
        add_doctor,
        add_stats,
        add_events,
        add_dlq,
        add_handlers,
        add_reconcile,
        add_orgs_parser,
        add_org_parser,
        add_mirror,
        add_console,
        add_receiver_parser,
        add_worker_parser,
        add_completion,
    )
