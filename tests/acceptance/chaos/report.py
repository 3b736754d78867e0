"""The chaos run's report: what must be zero, the failover times, what clients saw."""

from __future__ import annotations

from bench.core import percentile
from tests.acceptance.chaos.config import FAILOVER_TARGET_S, ChaosResult


def report(result: ChaosResult) -> list[str]:
    c = result.config

    def zero(values: list[str]) -> str:
        return "0: met" if not values else f"{len(values)}: NOT met (e.g. {values[0]})"

    fo = result.failovers_s
    missed = f", {result.failovers_missed} missed" if result.failovers_missed else ""
    failover = "no failover measured"
    if fo:
        p50, p95 = percentile(fo, 50), percentile(fo, 95)
        failover = f"{p50:.2f} / {p95:.2f} s ({len(fo)} failovers{missed})"
    met = fo and percentile(fo, 95) < FAILOVER_TARGET_S and not result.failovers_missed
    retried = sum(n for k, n in result.requests.items() if k.startswith(("5xx", "no answer")))
    lines = [
        "## Chaos: the cluster under faults",
        "",
        f"{c.jobs:,} jobs over {c.duration:.0f} s on {c.backends} backends "
        f"(modeled {c.job_seconds:g} s each), {c.schedulers} schedulers, {c.executors} executors "
        f"x {c.concurrency}, 2 web processes; wall {result.wall_s:.0f} s.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| jobs lost (accepted but never finished) | {zero(result.lost)} | 0 |",
        f"| jobs started twice | {zero(result.started_twice)} | 0 |",
        f"| jobs executed twice at once | {zero(result.executed_twice)} | 0 |",
        f"| results written twice | {zero(result.written_twice)} | 0 |",
        f"| failover, kill to the next decision, p50 / p95 | {failover} | "
        f"p95 < {FAILOVER_TARGET_S:g} s: {'met' if met else 'NOT met'} |",
        f"| submissions refused during failover | {retried:,} answers were a 5xx or none and "
        f"were retried; {result.dropped} dropped after two minutes of retries | "
        f"none silently dropped: {'met' if result.dropped == 0 else 'NOT met'} |",
        f"| dashboard reconnect time | {_spans(result.reconnects_s)} | reported |",
        f"| replay with the memory engine | {result.parity or 'not run'} | identical |",
        "",
        f"Accepted jobs: {result.accepted:,}; final: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(result.final.items()))
        + (
            "; errors: " + ", ".join(f"{k} {v}" for k, v in sorted(result.errors.items()))
            if result.errors
            else ""
        )
        + f". Accepted twice (a retried submission, sent with an `Idempotency-Key`, whose "
        "first answer was lost): "
        f"{result.duplicates}.",
        "",
        "Faults injected: " + ", ".join(f"{k} {v}" for k, v in result.faults.items()) + ".",
        "Redis away: " + _spans(result.redis_down_s) + ".",
        "Failovers: "
        + (
            f"min {min(fo):.2f} s, p90 {percentile(fo, 90):.2f} s, max {max(fo):.2f} s; "
            f"{sum(1 for v in fo if v >= FAILOVER_TARGET_S)} of {len(fo)} took "
            f"{FAILOVER_TARGET_S:g} s or more"
            if fo
            else "none measured"
        )
        + ".",
        "Executions by outcome: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(result.attempts.items()))
        + ".",
        "API answers: "
        + ", ".join(f"{k}: {v:,}" for k, v in sorted(result.requests.items()))
        + ".",
        "Browser updates after the last fault of each kind: "
        + (
            ", ".join(f"{k} {v}" for k, v in sorted(result.updates_afterinject_faults.items()))
            or "no browser"
        )
        + (f" ({result.browser_note})" if result.browser_note else "")
        + ".",
    ]
    if result.note:
        lines += ["", f"Note:{result.note}"]
    return [*lines, ""]


def _spans(values: list[float]) -> str:
    if not values:
        return "none measured"
    return ", ".join(f"{v:.2f} s" for v in values)
