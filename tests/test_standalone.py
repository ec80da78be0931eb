"""The repository stands alone: no file reaches past the clone's root, where a team folder may or may not lie.

Test data lives in the repository (the WorkOS samples in tests/fixtures/workos). A path into the folder beside
the clone works on a machine that happens to lay one out there and fails in a user's fresh clone.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest

from tests.fixtures import WORKOS_SAMPLES

ROOT = Path(__file__).resolve().parents[1]

# Code, tests and the CI entry point. Docs and deploy manifests may name a path in prose.
SCANNED = ("tests", "processor", "receiver", "shared", "bench", "chaos", "examples", ".ci", "Makefile")
# This file spells out the patterns; the samples' README may say where they came from.
EXEMPT = frozenset({"tests/test_standalone.py", "tests/fixtures/workos/README.md"})

# (what it is, pattern): each a reference that resolves outside the repository wherever it appears
FORBIDDEN = (
    ("the samples' old folder beside the repo", re.compile(r"workos-events")),
    ("a relative path into a sibling shared/", re.compile(r"\.\./+shared\b")),
    ("'..' then 'shared' as path parts", re.compile(r"""["']\.\.["']\s*[,/]\s*["']shared\b""")),
    ("the parent of the repository root", re.compile(r"\b[A-Z_]*(?:ROOT|REPO)\s*\.\s*parent\b")),
)
# `Path(__file__)...parents[k]`: outside the repository once k reaches the file's depth (tests/conftest.py: 2)
PARENTS = re.compile(r"\.parents\[\s*(\d+)\s*\]")
# `Path(__file__)...parent.parent...`: n steps are parents[n - 1]
PARENT_CHAIN = re.compile(r"__file__\s*\)(?:\s*\.\s*(?:resolve|absolute)\(\))?((?:\s*\.\s*parent\b)+)")


def offences(rel: str, text: str) -> list[str]:
    """Each line of `text` (the file at `rel`, from the repository root) that refers outside the repository."""
    depth = len(PurePosixPath(rel).parts)
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        reasons = [what for what, pattern in FORBIDDEN if pattern.search(line)]
        if any(int(match.group(1)) >= depth for match in PARENTS.finditer(line)):
            reasons.append(f"parents[k] with k >= {depth}, above the repository root")
        if any(match.group(1).count("parent") > depth for match in PARENT_CHAIN.finditer(line)):
            reasons.append(f"more than {depth} .parent steps, above the repository root")
        found += [f"{rel}:{number}: {reason}: {line.strip()}" for reason in reasons]
    return found


# Outside a git checkout (an unpacked archive), the tree is walked instead, less what is never committed.
_NOT_SOURCES = {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hookyard"}


def listed_files() -> list[str]:
    """Files git would commit under SCANNED: tracked ones, and new ones not ignored (caught before a commit)."""
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        top = ""
    if not top or Path(top).resolve() != ROOT:
        return _walked_files()
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", *SCANNED],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return sorted({name for name in out.decode().split("\0") if name})


def _walked_files() -> list[str]:
    found = []
    for name in SCANNED:
        base = ROOT / name
        paths = [base] if base.is_file() else base.rglob("*")
        for path in paths:
            rel = path.relative_to(ROOT)
            if any(part in _NOT_SOURCES or part.endswith(".egg-info") for part in rel.parts):
                continue
            if path.is_file() or path.is_symlink():
                found.append(rel.as_posix())
    return sorted(found)


def test_no_file_refers_outside_the_repository() -> None:
    files = listed_files()
    assert "tests/conftest.py" in files, "git listed none of the suite's files"

    found = []
    for rel in files:
        path = ROOT / rel
        if path.is_symlink() and not path.resolve().is_relative_to(ROOT):
            found.append(f"{rel}: a symlink to {path.resolve()}, outside the repository")
            continue
        if rel in EXEMPT or not path.is_file():  # deleted in the work tree, or not a regular file
            continue
        found += offences(rel, path.read_bytes().decode("utf-8", errors="replace"))

    assert not found, "files refer outside the repository (keep such data in tests/fixtures):\n" + "\n".join(found)


def test_the_samples_are_in_the_repository() -> None:
    assert WORKOS_SAMPLES.resolve().is_relative_to(ROOT)
    assert (WORKOS_SAMPLES / "connection.activated.body").is_file()


@pytest.mark.parametrize(
    ("rel", "line"),
    [
        ("tests/conftest.py", 'SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"'),
        ("tests/shared/test_envelope.py", "EVENTS = Path(__file__).resolve().parents[3] / 'data'"),
        ("tests/shared/test_envelope.py", "HERE = Path(__file__).resolve().parent.parent.parent.parent"),
        ("tests/test_end_to_end.py", 'body = (ROOT.parent / "shared" / "x.json").read_bytes()'),
        ("tests/test_x.py", "base = REPO_ROOT.parent"),
        ("tests/test_x.py", 'base = os.path.join(HERE, "..", "shared")'),
        ("Makefile", "\tcp ../shared/notes.md docs/"),
        (".ci/run", 'cp -r "$(dirname "$0")/../../shared/hooks" .'),
        ("processor/x.py", "# samples: see workos-events"),
    ],
)
def test_the_guard_catches_a_reference_outside(rel: str, line: str) -> None:
    assert offences(rel, line)


@pytest.mark.parametrize(
    ("rel", "line"),
    [
        ("tests/shared/test_settings.py", "ROOT = Path(__file__).resolve().parents[2]"),
        ("tests/test_end_to_end.py", "ROOT = Path(__file__).resolve().parents[1]"),
        ("tests/test_x.py", "HERE = Path(__file__).resolve().parent.parent"),
        ("tests/test_x.py", 'body = (ROOT / "shared" / "envelope.py").read_bytes()'),
        ("tests/test_x.py", "names = ROOT.parents  # unused"),
        ("tests/fuzz/test_x.py", 'b"/webhooks/../webhooks/workos",'),
        (".ci/run", 'cd "$(dirname "$0")/.."'),
        ("tests/conftest.py", "from processor.devtools.embedded_redis import EmbeddedRedis"),
    ],
)
def test_the_guard_lets_paths_inside_the_repository_pass(rel: str, line: str) -> None:
    assert offences(rel, line) == []
