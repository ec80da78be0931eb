"""deploy/Dockerfile read as instructions, for the checks that need what it says (stages, user, command)."""

from __future__ import annotations

import re

from tests.deploy.paths import DOCKERFILE

Stage = list[tuple[str, str]]


def stages() -> list[Stage]:
    """The instructions (KEYWORD, arguments), continuation lines joined, one list per stage.

    ARGs declared before the first FROM come first, as a stage of their own.
    """
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.lstrip().startswith("#") or (not pending and not line.strip()):
            continue  # comments may also sit inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    result: list[Stage] = [[]]
    for instruction in logical:
        keyword, _, arguments = instruction.strip().partition(" ")
        if keyword.upper() == "FROM":
            result.append([])
        result[-1].append((keyword.upper(), arguments.strip()))
    return result


def expand(value: str, stage: Stage) -> str:
    """`value` with the stage's ARG defaults substituted."""
    defaults = dict(arg.split("=", 1) for keyword, arg in stage if keyword == "ARG" and "=" in arg)
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: defaults.get(m[1] or m[2], m[0]), value)


def runtime_uid() -> int:
    """The uid the final image runs as (its last USER)."""
    final = stages()[-1]
    [*_, user] = [expand(arg, final) for keyword, arg in final if keyword == "USER"]
    return int(user.split(":")[0])
