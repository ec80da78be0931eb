"""The chaos run, small: the real stack, a WorkOS-like sender, a worker SIGKILLed, Redis and the receiver
restarted — nothing lost, doubled or misordered (`make chaos` runs the full size)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.mark.timeout(300)
def test_chaos_smoke_run_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chaos", "--events", "400", "--resources", "25", "--rate", "100", "--seed", "7"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.splitlines()[0]
    assert summary.startswith("chaos: PASS")
    assert "lost=0 doubled=0 misordered=0" in summary
    assert "| handled[chaos.ordered] | 400 |" in result.stdout
