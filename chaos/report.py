"""The chaos run's report: a one-line summary (PASS/FAIL), then Markdown tables — per handler, per phase, the checks,
and what the run observed."""

from __future__ import annotations

from chaos.figures import HandlerFigures, percentile
from chaos.nemesis import Fault
from chaos.plan import Plan
from chaos.verdict import Verdict

__all__ = ["render"]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def render(verdict: Verdict, plan: Plan, faults: list[Fault], elapsed_s: float) -> str:
    figures = verdict.handlers
    totals = {
        name: sum(int(getattr(f, attr)) for f in figures)
        for name, attr in (
            ("lost", "lost"),
            ("doubled", "doubled_bug"),
            ("misordered", "misordered"),
            ("innocent_dead", "innocent_dead"),
        )
    }
    failed = [c.name for c in verdict.checks if not c.ok]
    lines = [
        f"chaos: {'PASS' if verdict.ok else 'FAIL'} seed={plan.seed} "
        + " ".join(f"{k}={v}" for k, v in totals.items())
        + f" checks={len(verdict.checks) - len(failed)}/{len(verdict.checks)} elapsed={elapsed_s:.0f}s",
        "",
        "| handler | handled | lost | doubled (higher attempt) | doubled (bug) | stale starts | misordered "
        "| behind an unfinished attempt | late | innocent dead | expected dead | lag p50 / p99 / max s "
        "| other keys' lag p99 while hung/killed s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    hang_kill = [f for f in faults if f.name in ("hang", "kill")]
    since = min((f.started for f in hang_kill), default=0.0)
    until = max((f.ended for f in hang_kill), default=-1.0)
    for fig in figures:
        lines.append(_handler_row(fig, since, until))
    lines += [
        "",
        "| phase | seconds | effect seen | what | events ready in it | lag p99 s (all handlers) |",
        "|---|---|---|---|---|---|",
    ]
    for fault in faults:
        lags = [lag for f in figures for ready, lag in f.lags if fault.started <= ready <= fault.ended]
        p99 = f"{percentile(lags, 0.99):.2f}" if lags else "-"
        lines.append(
            f"| {fault.name} | {fault.seconds:.1f} | {'yes' if fault.observed else 'NO'} | {fault.note or '-'} "
            f"| {len(lags)} | {p99} |"
        )
    lines += ["", "| check | value | expected | result |", "|---|---|---|---|"]
    for check in verdict.checks:
        lines.append(f"| {check.name} | {check.value} | {check.expected} | {'PASS' if check.ok else 'FAIL'} |")
    lines += ["", "| measure | value |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in verdict.measures]
    return "\n".join(lines)


def _handler_row(fig: HandlerFigures, since: float, until: float) -> str:
    ordered = fig.handler != "chaos.unordered"
    expected = ", ".join(f"{n} {error}" for error, n in sorted(fig.expected_dead.items())) or "0"
    lag = " / ".join(_seconds(fig.lag(q)) for q in (0.5, 0.99, 1.0))
    return (
        f"| {fig.handler} | {fig.handled} | {fig.lost} | {fig.doubled_window} | {fig.doubled_bug} "
        f"| {fig.stale_starts} | {fig.misordered if ordered else '-'} | {fig.behind_unfinished if ordered else '-'} "
        f"| {fig.late if ordered else '-'} | {fig.innocent_dead} | {expected} | {lag} "
        f"| {_seconds(fig.lag(0.99, since, until))} |"
    )
