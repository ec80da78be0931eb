"""`python -m bench --quick`: every part runs and the report has a row for every contender (no performance
assertions: sizes are tiny and the machine is shared; `make bench` is the measurement)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.capacity_load import INGEST_VARIANTS
from bench.processor_bench import ROUND_VARIANTS, WINDOW_VARIANT
from bench.redis_memory import CASES
from bench.report import ANALYSIS_END, ANALYSIS_START

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

RECEIVER_ROWS = ("| 1. ceiling", "| 2. textbook", "| 3. Hookyard receiver")


@pytest.mark.timeout(180)
def test_quick_run_writes_every_table(tmp_path: Path) -> None:
    # Given a report path and a results path outside the repository
    report = tmp_path / "benchmarks.md"
    results = tmp_path / "results.json"

    # When the quick benchmark runs
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(report), "--json", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )

    # Then it succeeds and the report has the machine, the targets and a row per contender in each table
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    text = report.read_text()
    headings = ("## Machine", "## Targets", "## Receiver: the HTTP ack path", "## Processor", "## End to end",
                "## Redis memory per event", "## Console pages over a large store")  # fmt: skip
    for heading in headings:
        assert heading in text
    for row in RECEIVER_ROWS:
        assert row in text
    for variant in (*ROUND_VARIANTS, WINDOW_VARIANT):
        assert f"| {variant.label} |" in text
    for measure in ("**Crash recovery.**", "**Delivery lag.**", "**Memory.**", "| 0 |", "| 5s (default) |"):
        assert measure in text
    assert "Runs that failed" not in text, text[text.find("Runs that failed") :]
    assert ANALYSIS_START in text and ANALYSIS_END in text
    # And every receiver contender produced a number in its round
    data = json.loads(results.read_text())
    for contender in ("ceiling", "textbook", "hookyard"):
        assert data["receiver"][contender]["rps"]["0"] > 0
    for variant in (*ROUND_VARIANTS, WINDOW_VARIANT):
        assert data["processor"][variant.name]["events_per_s"]["0"] > 0
    # And every memory case grew Redis while pending, by more than once it was handled
    cases = data["redis_memory"]["cases"]
    assert len(cases) == len(CASES)
    for case in cases:
        assert case["pending_per_event"] > case["handled_per_event"] > case["case"]["body_bytes"]
    # And the capacity part wrote its own report beside it: unit costs on both stores, every ingest variant and both
    # MIN_REPLICAS settings with a number, and the model's table
    capacity = (tmp_path / "capacity.md").read_text()
    for heading in ("## Unit costs per event", "## Ingest throughput", "## Ack latency on the cluster",
                    "## Model: cores and primaries"):  # fmt: skip
        assert heading in capacity
    for variant in INGEST_VARIANTS:
        [row] = [line for line in capacity.splitlines()
                 if line.startswith(f"| {variant.store} | {variant.shards} | {variant.processes} |")]  # fmt: skip
        assert float(row.split(" | ")[3].split()[0].replace(",", "")) > 0, row
    for setting in (0, 1):
        [row] = [line for line in capacity.splitlines() if line.startswith(f"| `HOOKYARD_MIN_REPLICAS={setting}` |")]
        assert float(row.split(" | ")[1].split()[0]) > 0, row
    assert "| receiver (ack + append): Redis commands |" in capacity
    assert "| saturates first |" in capacity and "No model" not in capacity
