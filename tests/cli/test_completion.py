"""`hookyard completion bash|zsh`: scripts generated from the argparse tree; the bash one is run by a real bash
against command lines an operator would type."""

from __future__ import annotations

import io
import shutil
import subprocess
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from processor.cli import build_parser, main
from processor.cli.completion import commands


@pytest.fixture(scope="module")
def bash_script() -> str:
    return script_of("bash")


def script_of(shell: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["completion", shell]) == 0
    return out.getvalue()


def complete(script: str, line: str) -> list[str]:
    """What bash offers for `line` (the cursor at its end; a trailing space starts a new word)."""
    words = line.split()
    if line.endswith(" "):
        words.append("")
    program = (
        f"{script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
        '_hookyard; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run([bash, "--norc", "-c", program], capture_output=True, text=True, timeout=30, check=True)
    return [word for word in done.stdout.splitlines() if word]


@pytest.mark.parametrize(
    ("line", "offered"),
    [
        ("hookyard ", ["dev", "send", "verify", "doctor", "stats", "events", "dlq", "handlers", "completion"]),
        ("hookyard ev", ["events"]),
        ("hookyard events ", ["list", "show"]),
        ("hookyard events list --st", ["--status"]),
        ("hookyard events list --status ", ["pending", "running", "dead", "skipped", "done"]),
        ("hookyard events list --status d", ["dead", "done"]),
        ("hookyard dlq replay --", ["--all", "--dry-run", "--handler", "--since", "--skipped"]),
        ("hookyard send dsync.user.cr", ["dsync.user.created"]),
        ("hookyard events list --type 'dsync.*' --fol", ["--follow"]),
        ("hookyard completion ", ["bash", "zsh"]),
        ("hookyard stats --watch ", []),
    ],
)
def test_bash_offers_what_the_parser_accepts(bash_script: str, line: str, offered: list[str]) -> None:
    found = complete(bash_script, line)

    assert set(offered) <= set(found), found
    if not offered:
        assert found == []


def test_bash_completes_file_names_for_a_path(bash_script: str, tmp_path: Path) -> None:
    (tmp_path / "body.json").write_text("{}")

    found = complete(bash_script, f"hookyard verify --body-file {tmp_path}/bo")

    assert found == [f"{tmp_path}/body.json"]


def test_the_tree_is_the_parsers() -> None:
    tree = {" ".join(command.path): command for command in commands(build_parser())}

    assert {"hookyard", "hookyard events list", "hookyard dlq purge", "hookyard completion"} <= set(tree)
    assert tree["hookyard events list"].values["--status"] == ("pending", "running", "dead", "skipped", "done")
    assert tree["hookyard verify"].values["--body-file"] == "files"
    assert tree["hookyard send"].values["--url"] is None
    assert tree["hookyard"].words["events"] == "list received events, show one, or resend them to a handler"


def test_zsh_describes_every_verb_and_option() -> None:
    script = script_of("zsh")

    assert script.startswith("#compdef hookyard\n")
    assert "compdef _hookyard hookyard" in script
    assert "'events:list received events, show one, or resend them to a handler'" in script
    assert "(--status) compadd -- 'pending' 'running' 'dead' 'skipped' 'done'; return ;;" in script
    assert "(--body-file) _files; return ;;" in script
    assert "30%:" not in script and "(0.3: 30%)" in script  # argparse's %% is shown as %
