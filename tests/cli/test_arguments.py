"""Argument types the verbs share: `--since`/`--until` values, absolute or a duration ago."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import pytest

from processor.cli.arguments import time_bound


def test_since_accepts_iso_and_durations_ago() -> None:
    now_ms = 1_800_000_000_000

    assert time_bound("2h").resolve(now_ms) == now_ms - 7_200_000
    assert time_bound("7d").resolve(now_ms) == now_ms - 7 * 86_400_000
    assert time_bound("90").resolve(now_ms) == now_ms - 90_000
    assert time_bound("2026-11-27T09:00:00Z").resolve(now_ms) == int(
        datetime(2026, 11, 27, 9, tzinfo=UTC).timestamp() * 1000
    )
    assert time_bound("2026-11-27T10:00:00+01:00") == time_bound("2026-11-27T09:00:00")
    assert time_bound("2026-11-27") == time_bound("2026-11-27T00:00:00Z")


def test_since_rejects_anything_else() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="ISO-8601"):
        time_bound("last tuesday")
