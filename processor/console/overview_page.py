"""The overview: per handler what `hookyard stats` says (pending, oldest pending age and how much of it is the
hold-back window, runs/s, lag, dead letters, skipped), the inbox, the live workers and their handler sets, and
charts of the last hour from the console's history."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from processor import overview as backlog
from processor.cli.scrape import Reading
from processor.console.charts import line_chart
from processor.console.history import read_history, steps
from processor.console.rendering import console_of, page
from processor.stats import read_workers
from shared.clock import wall_ms

if TYPE_CHECKING:
    from processor.console.app import Console

__all__ = ["overview"]


async def overview(request: Request) -> Response:
    return page(request, "overview.html", **await run_in_threadpool(_context, console_of(request)))


def _context(console: Console) -> dict[str, Any]:
    sampler = console.sampler
    now = sampler.read_now()
    before = sampler.previous()
    if not isinstance(now, Reading) or before is None or before.at_s >= now.at_s:
        before = None
    document = backlog.document(console.client, console.settings, sampler.metrics_url, before or now, now)
    now_ms = wall_ms()
    workers = read_workers(console.client, now_ms)
    # Handlers that run events at once (order_by="none", as the live workers say) have no hold-back window.
    unordered = {str(h["name"]) for info in workers.values() for h in info.handlers or () if h.get("ordered") is False}
    window = console.settings.reorder_window_s
    for name, entry in document["handlers"].items():
        oldest = entry["oldest_pending_age_s"]
        ordered = name not in unordered and window > 0
        entry["window_part_s"] = min(oldest, window) if oldest is not None and ordered else None
    found = steps(read_history(console.client))
    at = [step.at_ms for step in found]
    charts = [
        line_chart("runs per second", at, [step.runs_per_s for step in found], "/s"),
        line_chart("delivery lag p99", at, [step.lag_p99_s for step in found], "s"),
        line_chart("delivery lag p50", at, [step.lag_p50_s for step in found], "s"),
        line_chart("events pending", at, [float(step.pending) for step in found], ""),
    ]
    return {
        "doc": document,
        "workers": workers,
        "charts": charts,
        "interval_s": console.settings.console.sample_interval_s,
    }
