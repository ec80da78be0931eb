"""docs/capacity.md from one run of the capacity part: the unit costs on one server and on a cluster side by side,
ingest throughput by shards and processes, ack latency by `HOOKYARD_MIN_REPLICAS`, and the sizing model fed with
the measured costs. The hand-written notes between the analysis markers are carried over from the previous file."""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime
from pathlib import Path

from redis.crc import key_slot

from bench.capacity_load import INGEST_VARIANTS
from bench.capacity_model import ComponentNeed, Sizing, UnitCosts, busiest_share, primaries_ceiling, size_for
from bench.capacity_part import CLUSTER_INBOX_SHARDS, CapacityRecord, unit_costs
from bench.capacity_stores import CLUSTER, SINGLE
from bench.machine import Machine
from bench.report import ANALYSIS_END, ANALYSIS_START, existing_analysis
from bench.stats import Summary

__all__ = ["RATES", "TARGET_UTILISATION", "render_capacity", "sizing_table", "write_capacity"]

DASH = "\N{EN DASH}"
TIMES = "\N{MULTIPLICATION SIGN}"
RATES = (1_000.0, 10_000.0, 100_000.0)
TARGET_UTILISATION = 0.7
STATE_SHARDS = 16  # shared.keys.SHARDS: the `{hy:N}` tags every pair and event key carries
_PHASES = (("receive", "receiver (ack + append)"), ("ingest", "ingester (admit)"), ("run", "worker (handler run)"))


def _number(value: float, digits: int = 1) -> str:
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.{digits}f}"


def _summary(s: Summary, digits: int = 1) -> str:
    if s.count == 0:
        return "—"
    text = _number(s.median, digits)
    return text + (f" ({_number(s.low, digits)}{DASH}{_number(s.high, digits)})" if s.count > 1 else "")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def _bytes(value: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:,.1f} {unit}"
    return f"{value:,.0f} B"


def _ratio(record: CapacityRecord, phase: str, metric: str) -> str:
    single = record.units.summary(f"{SINGLE}/{phase}", metric).median
    cluster = record.units.summary(f"{CLUSTER}/{phase}", metric).median
    return f"{cluster / single:.2f}{TIMES}" if single and not math.isnan(single + cluster) else "—"


def _unit_costs(record: CapacityRecord) -> list[str]:
    u = record.units
    rows = []
    for phase, label in _PHASES:
        for metric, what, digits in (
            ("process_cpu_us", "process CPU µs", 0),
            ("redis_cpu_us", "Redis CPU µs", 0),
            ("redis_commands", "Redis commands", 1),
            ("script_calls", "of which scripts", 2),
            ("events_per_s", "rate, events/s", 0),
        ):
            rows.append(
                [
                    f"{label}: {what}",
                    _summary(u.summary(f"{SINGLE}/{phase}", metric), digits),
                    _summary(u.summary(f"{CLUSTER}/{phase}", metric), digits),
                    _ratio(record, phase, metric),
                ]
            )
    for phase, label in _PHASES:
        rows.append(
            [
                f"{label}: CPU µs on the replicas",
                "—",
                _summary(u.summary(f"{CLUSTER}/{phase}", "replica_cpu_us"), 0),
                "",
            ]
        )
        rows.append(
            [
                f"{label}: broker Redis CPU µs / commands",
                "(in the store)",
                _summary(u.summary(f"{CLUSTER}/{phase}", "broker_cpu_us"), 0)
                + " / "
                + _summary(u.summary(f"{CLUSTER}/{phase}", "broker_commands"), 1),
                "",
            ]
        )
    for metric, what in (
        ("pending_bytes", "Redis memory per event admitted, pending"),
        ("handled_bytes", "Redis memory per event handled (kept for dedupe and retention)"),
    ):
        rows.append(
            [
                what,
                _summary(u.summary(f"{SINGLE}/memory", metric), 0),
                _summary(u.summary(f"{CLUSTER}/memory", metric), 0),
                "",
            ]
        )
    return _table(
        [
            "per event (median over rounds, range)",
            "one server",
            f"cluster ({record.primaries}+{record.primaries})",
            "cluster / server",
        ],
        rows,
    )


def _per_primary(record: CapacityRecord) -> list[str]:
    rows = []
    for index in range(record.primaries):
        cells = [f"primary {index + 1}"]
        for phase, _ in _PHASES:
            cpu = record.units.summary(f"{CLUSTER}/{phase}", f"primary{index}_cpu_us")
            calls = record.units.summary(f"{CLUSTER}/{phase}", f"primary{index}_commands")
            cells.append(f"{_number(cpu.median, 0)} µs, {_number(calls.median, 1)} cmds")
        rows.append(cells)
    return _table(["cluster node", *(label for _, label in _PHASES)], rows)


def _ingest(record: CapacityRecord) -> list[str]:
    reference = INGEST_VARIANTS[1].name
    rows = []
    for variant in INGEST_VARIANTS:
        rate = record.ingest.summary(variant.name, "events_per_s")
        ratio = record.ingest.ratio(variant.name, reference, "events_per_s")
        rows.append(
            [
                variant.store,
                str(variant.shards),
                str(variant.processes),
                _summary(rate, 0),
                _summary(ratio, 2) + TIMES if ratio.count else "—",
                _summary(record.ingest.summary(variant.name, "cpu_us"), 0),
            ]
        )
    return _table(
        [
            "store",
            "inbox shards",
            "ingest processes",
            "events/s",
            f"vs cluster 1{TIMES}1 (same round)",
            "ingest CPU µs/event",
        ],
        rows,
    )


def _ack(record: CapacityRecord) -> list[str]:
    rows = []
    for setting in (0, 1):
        name = f"min-replicas-{setting}"
        rows.append(
            [f"`HOOKYARD_MIN_REPLICAS={setting}`"]
            + [_summary(record.ack.summary(name, m), 2) for m in ("p50_ms", "p90_ms", "p99_ms")]
            + [_summary(record.ack.summary(name, "non_2xx"), 0)]
        )
    p50 = record.ack.ratio("min-replicas-1", "min-replicas-0", "p50_ms")
    p99 = record.ack.ratio("min-replicas-1", "min-replicas-0", "p99_ms")
    rows.append(["1 vs 0 (same round)", _summary(p50, 2) + TIMES, "", _summary(p99, 2) + TIMES, ""])
    return _table(["receiver on the cluster", "p50 ms", "p90 ms", "p99 ms", "non-2xx"], rows)


def _need(need: ComponentNeed) -> str:
    if need.units is None and need.unit == "shards":
        return "**not reachable** (more than 64)"
    if need.units is None:
        return f"**not reachable** (one state tag alone: {need.utilisation:.0%} of a primary)"
    return f"{need.units} ({need.utilisation:.0%})"


def sizing_table(costs: UnitCosts, rates: tuple[float, ...] = RATES, util: float = TARGET_UTILISATION) -> list[str]:
    """The model's table: one row per component and rate."""
    sizings: list[Sizing] = [size_for(rate, costs, util=util, state_shards=STATE_SHARDS) for rate in rates]
    header = ["", *(f"{rate:,.0f} events/s" for rate in rates)]
    rows = [
        ["receiver cores", *(_need(s.receiver) for s in sizings)],
        ["ingest processes", *(_need(s.ingest_processes) for s in sizings)],
        ["inbox shards (`HOOKYARD_INBOX_SHARDS`)", *(_need(s.inbox_shards) for s in sizings)],
        ["worker cores (1 handler)", *(_need(s.worker) for s in sizings)],
        ["Redis primaries (busiest one's CPU)", *(_need(s.primaries) for s in sizings)],
        ["Redis memory, 5 s window (pending)", *(_bytes(s.window_bytes) for s in sizings)],
        ["Redis memory, 7 days retention (handled)", *(_bytes(s.retention_bytes) for s in sizings)],
        ["saturates first", *(s.first for s in sizings)],
    ]
    return _table(header, rows)


def _model(record: CapacityRecord) -> list[str]:
    costs = unit_costs(record)
    if not all(value > 0 for value in dataclasses.astuple(costs)):  # NaN compares false too
        return ["No model: a unit cost is missing (see the failed runs)."]
    per_unit = [
        ("one receiver core", TARGET_UTILISATION * 1e6 / costs.receiver_cpu_us),
        ("one ingest process", TARGET_UTILISATION * 1e6 / costs.ingest_cpu_us),
        ("one inbox shard (its lease holder)", TARGET_UTILISATION * costs.shard_events_per_s),
        ("one worker core", TARGET_UTILISATION * 1e6 / costs.worker_cpu_us),
        ("one Redis primary taking all of the Redis work", TARGET_UTILISATION * 1e6 / costs.redis_cpu_us),
        ("64 inbox shards (the most allowed)", TARGET_UTILISATION * 64 * costs.shard_events_per_s),
        (
            f"the cluster at its ceiling ({STATE_SHARDS} primaries, one state tag each)",
            primaries_ceiling(costs, TARGET_UTILISATION, STATE_SHARDS),
        ),
    ]
    even = [busiest_share(p, STATE_SHARDS) for p in (3, 4, 8, 16)]
    return [
        f"Inputs (the cluster's medians above): receiver {costs.receiver_cpu_us:,.0f} µs, ingest "
        f"{costs.ingest_cpu_us:,.0f} µs, worker {costs.worker_cpu_us:,.0f} µs per handler run, Redis "
        f"{costs.redis_inbox_cpu_us:,.0f} µs (inbox) + {costs.redis_state_cpu_us:,.0f} µs (state) per event summed "
        f"over the primaries, one inbox shard drains {costs.shard_events_per_s:,.0f} events/s, "
        f"{costs.pending_bytes:,.0f} B per pending event and {costs.handled_bytes:,.0f} B per handled event. "
        f"Target utilisation {TARGET_UTILISATION:.0%} of every unit.",
        "",
        f"- cores(component) = ⌈rate {TIMES} CPU µs per event / 10⁶ / utilisation⌉"
        f" (workers: {TIMES} handlers per event);",
        "- ingest processes = the same with the ingest cost (one process is GIL-bound: one core at most); inbox shards"
        f" = max(processes, ⌈rate / (one shard's rate {TIMES} utilisation)⌉), ≤ 64;",
        f"- Redis primaries = the fewest P with rate {TIMES} (inbox µs / P + state µs {TIMES} ⌈16 / P⌉ / 16) / 10⁶"
        " ≤ utilisation:"
        " Redis runs commands on one thread, so the busiest primary decides, and every pair and event key carries one"
        f" of {STATE_SHARDS} `{{hy:N}}` tags, so a primary carries at least one tag's share (more primaries than tags"
        " add nothing);",
        f"- memory = rate {TIMES} window {TIMES} bytes per pending event, plus rate {TIMES} retention {TIMES} bytes"
        " per handled event.",
        "",
        *sizing_table(costs),
        "",
        "What one unit serves at the target utilisation (the smallest saturates first as the rate grows):",
        "",
        *_table(
            ["unit", "events/s"], [[name, _number(rate, 0)] for name, rate in sorted(per_unit, key=lambda x: x[1])]
        ),
        "",
        "Where the state tags land (a short simulation, not a formula): `redis-cli --cluster create` splits the 16,384"
        f" slots evenly, and the {STATE_SHARDS} tags' slots come in four clumps, so with 3, 4, 8 and 16 primaries"
        " split evenly the busiest primary carries "
        + ", ".join(f"{share:.0%}" for share in (_even_split_share(p) for p in (3, 4, 8, 16)))
        + " of the state work — against "
        + ", ".join(f"{share:.0%}" for share in even)
        + " with the tags' slots moved one per primary (docs/operations.md, Resharding). The table assumes the latter.",
    ]


def _even_split_share(primaries: int) -> float:
    counts = [0] * primaries
    for tag in range(STATE_SHARDS):
        counts[min(primaries - 1, key_slot(f"{{hy:{tag}}}".encode()) * primaries // 16384)] += 1
    return max(counts) / STATE_SHARDS


def render_capacity(record: CapacityRecord, machine: Machine, started_at: datetime, command: str, analysis: str) -> str:
    plan = record.plan
    lines = [
        "# Capacity: unit costs measured, the rest modelled",
        "",
        f"Generated by `{command}` on {started_at:%Y-%m-%d %H:%M} UTC in {record.seconds / 60:.1f} minutes;"
        f" {plan.rounds} round(s), variants interleaved within each round. Machine: {machine.cores} cores,"
        f" {machine.cpu_model}, Linux {machine.kernel}, Python {machine.python}; redis-server {machine.redis_server}."
        " Other jobs share this machine: compare within a table (ratios are per round); absolute figures are upper"
        " bounds.",
        "",
        "## Unit costs per event: one Redis server vs a Redis Cluster",
        "",
        f"Per store and round, {plan.events:,} distinct signed `dsync.user.created` deliveries (≈1.2 KB) over"
        f" {plan.resources} users go through the stack as deployed, one phase at a time: the receiver acknowledges"
        f" them ({plan.connections} connections, closed loop), one dedicated ingester admits them, one worker process"
        " (8 threads) runs the one no-op handler on each, default 5 s reorder window. The process under test runs on"
        " core 0; Redis, the load generator and the bench on core 1. Process CPU from /proc from the first event to the"
        " last (start-up left out); Redis from `INFO commandstats` and `INFO cpu` differences on every node from the"
        " process's start to the last event (its connecting and, in the worker phase, its polling while the window"
        " held the events back are in; the bench's own INFO and LLEN polls are taken off). Redis figures are summed"
        " over the store's"
        f" primaries. The cluster: {record.primaries} primaries with a replica each (`cluster-node-timeout` 1 s),"
        f" `HOOKYARD_INBOX_SHARDS={CLUSTER_INBOX_SHARDS}`, wake-ups through a separate Redis broker; the one server:"
        " one inbox, wake-ups in the store (as deployed by default). The bench handler's counter is in a Redis of its"
        " own, charged to neither.",
        "",
        *_unit_costs(record),
        "",
        "Per primary of the cluster (CPU µs and commands per event, median):",
        "",
        *_per_primary(record),
        "",
        f"## Ingest throughput: inbox shards {TIMES} ingest processes",
        "",
        f"A backlog of {plan.ingest_events:,} events (as the receiver appends them, each in the shard the receiver"
        " picks) drained by dedicated ingesters (`python -m processor.worker --ingester`), unpinned (both cores);"
        " rate from the first message taken to the last.",
        "",
        *_ingest(record),
        "",
        "## Ack latency on the cluster: `HOOKYARD_MIN_REPLICAS` 0 vs 1",
        "",
        f"Two receivers on the same cluster, one waiting for a replica after each append (`WAIT 1`), offered"
        f" {plan.ack_rate:g} req/s for {plan.ack_s:g} s each per round (open loop, latency from each request's due"
        " time), after a short warm-up each, in four slices A B B A (B A A B the next round); percentiles over each"
        " round's samples. Both receivers are pinned to core 0, the cluster and the load generator to core 1.",
        "",
        *_ack(record),
        "",
        "## Model: cores and primaries for 1k, 10k and 100k events/s",
        "",
        *_model(record),
        "",
        "## Commands",
        "",
        *(f"- {name}: `{cmd}`" for name, cmd in sorted(record.commands.items())),
        "",
    ]
    if record.failures:
        lines += ["## Runs that failed", "", *(f"- {failure}" for failure in record.failures), ""]
    return "\n".join(lines) + ANALYSIS_START + analysis + ANALYSIS_END + "\n"


def write_capacity(record: CapacityRecord, machine: Machine, started_at: datetime, command: str, path: Path) -> str:
    text = render_capacity(record, machine, started_at, command, existing_analysis(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text
