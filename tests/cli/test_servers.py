"""`hookyard receiver` and `hookyard worker` become the production processes, with the environment `dev` gives
its children."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from processor.cli import main


class Execed(Exception):
    pass


@pytest.mark.parametrize(("verb", "module"), [("receiver", "receiver"), ("worker", "processor")])
def test_production_verbs_exec_the_module(
    verb: str, module: str, env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[tuple[str, list[str], dict[str, str]]] = []

    def fake_execve(path: str, argv: list[str], environ: dict[str, str]) -> None:
        calls.append((path, argv, environ))
        raise Execed

    monkeypatch.setattr(os, "execve", fake_execve)
    monkeypatch.setenv("PYTHONPATH", "/opt/handlers")
    with pytest.raises(Execed):
        main([verb])

    [(path, argv, environ)] = calls
    assert (path, argv) == (sys.executable, [sys.executable, "-m", module])
    assert environ["PYTHONPATH"] == os.pathsep.join([str(tmp_path), "/opt/handlers"])
    assert environ["HOOKYARD_DATA_DIR"] == str(env)
