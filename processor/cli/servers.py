"""`hookyard receiver` and `hookyard worker`: become the production processes (`python -m receiver`,
`python -m processor`), so a process manager's signals and exit codes reach the server itself."""

from __future__ import annotations

import argparse
import os
import sys

from processor.cli.arguments import Run, Verbs
from processor.cli.dev import child_environment

__all__ = ["add_receiver_parser", "add_worker_parser"]


def add_receiver_parser(verbs: Verbs) -> None:
    receiver = verbs.add_parser(
        "receiver",
        help="run the receiver (`python -m receiver`)",
        description="Replace this process with the receiver (`python -m receiver`); configured by environment.",
    )
    receiver.set_defaults(run=_exec_module("receiver"))


def add_worker_parser(verbs: Verbs) -> None:
    worker = verbs.add_parser(
        "worker",
        help="run the workers (`python -m processor`)",
        description="Replace this process with the worker (`python -m processor`); configured by environment.",
    )
    worker.set_defaults(run=_exec_module("processor"))


def _exec_module(module: str) -> Run:
    def run(args: argparse.Namespace, environ: dict[str, str]) -> int:
        # exec, not a child: the process manager's signals and exit code reach the server itself.
        argv = [sys.executable, "-m", module]
        os.execve(sys.executable, argv, child_environment(environ))  # noqa: S606 - argv, no shell
        return 1  # pragma: no cover - execve does not return

    return run
