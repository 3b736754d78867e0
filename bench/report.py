"""The Markdown report: measured numbers only, verdicts computed from them."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime

from .core import ROOT
from .decision import DecisionRow, summary
from .simulate import SimRow

SIMULATE_TARGET = (1_000_000, 60.0)  # jobs, seconds
DECISION_TARGET = (100_000, 1000.0)  # queued jobs, microseconds


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return out.stdout.strip()


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def header(seed: int, args: str, load_before: float) -> list[str]:
    dirty = _git("status", "--porcelain", "--", "scheduler")
    commit = _git("rev-parse", "--short", "HEAD") + (" (scheduler/ modified)" if dirty else "")
    return [
        "# qdash benchmarks",
        "",
        f"- run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, `python -m bench {args}`".rstrip(),
        f"- code: commit {commit}",
        f"- machine: {_cpu()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"{platform.system()}; 1-min load average {load_before:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end (other work on the machine skews timings)",
        f"- scenarios: `bench.generate`, seed {seed}, 8 backends, 20 instances in 4 hubs",
        "",
    ]


def _num(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def simulate_table(rows: list[SimRow]) -> list[str]:
    lines = [
        "## simulate: `manage.py simulate` end to end, one fresh process per run",
        "",
        "| engine | jobs | wall s | jobs/s | load s | run s | dump s | peak RSS MB "
        "| busy % mean / max backend | queued mean / max | trace = memory | notes |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|---|",
    ]
    for row in rows:
        if row.run is None:
            lines.append(f"| {row.engine} | {row.jobs:,} | | | | | | | | | | {row.note} |")
            continue
        r = row.run.result
        notes = [row.note] if row.note else []
        if r.get("db_setup"):
            notes.append(f"wall includes {r['db_setup']:.1f} s scratch database create + drop")
        stats = row.stats
        busy = f"{stats.busy_mean:.1%} / {stats.busy_max:.1%}" if stats else ""
        queue = f"{stats.queue_mean:.0f} / {stats.queue_max}" if stats else ""
        same = "" if row.same_as_memory is None else ("yes" if row.same_as_memory else "**NO**")
        lines.append(
            f"| {row.engine} | {row.jobs:,} | {_num(r['wall'])} | {_num(row.jobs / r['wall'], 0)} "
            f"| {_num(r['load'])} | {_num(r['run'])} | {_num(r['dump'])} "
            f"| {_num(row.run.peak_rss_mb, 0)} | {busy} | {queue} | {same} | {'; '.join(notes)} |"
        )
    lines += [
        "",
        "wall = load + run + dump, timed inside the child as `manage.py simulate` runs them "
        "(interpreter and Django start-up excluded"
        + _startup_note(rows)
        + "). Peak RSS: the child's VmHWM at exit (whole process"
        + _baseline_note(rows)
        + "; not `ru_maxrss`, which Linux seeds with the parent's size across fork and exec). "
        "busy % and queued are measured from the memory trace over [0, last arrival]: the "
        "fraction of time each backend ran a job, and the time-averaged / largest number "
        "of queued jobs (all backends). trace = memory: the db trace equals the memory "
        "trace of the same scenario (as parsed JSON).",
        "",
    ]
    return lines


def _startup_note(rows: list[SimRow]) -> str:
    runs = [row.run for row in rows if row.run is not None and row.engine == "memory"]
    if not runs:
        return ""
    smallest = min(runs, key=lambda run: run.result["wall"])
    return f"; it took {smallest.wall - smallest.result['wall']:.1f} s per process here"


def _baseline_note(rows: list[SimRow]) -> str:
    runs = [row.run for row in rows if row.run is not None]
    if not runs:
        return ""
    baseline = min(run.result.get("baseline_rss_mb", 0.0) for run in runs)
    return f", {baseline:.0f} MB of it after start-up"


def decision_table(rows: list[DecisionRow]) -> list[str]:
    lines = [
        "## decision: one scheduling decision with N jobs queued",
        "",
        "| queued jobs | open sessions with queued jobs | policy median µs | policy p95 µs "
        "| cold-cache median µs | cold-cache p95 µs | naive rescan median µs | naive p95 µs "
        "| naive / policy (median) | picks by lane (both passes) |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for row in rows:
        p50, p95 = summary(row.policy_us)
        c50, c95 = summary(row.cold_us)
        n50, n95 = summary(row.naive_us)
        lanes = ", ".join(f"{lane} {count}" for lane, count in sorted(row.lanes.items()))
        lines.append(
            f"| {row.queued:,} | {row.sessions:,} | {_num(p50, 1)} | {_num(p95, 1)} "
            f"| {_num(c50, 1)} | {_num(c95, 1)} | {_num(n50, 1)} | {_num(n95, 1)} "
            f"| {_num(n50 / p50, 0)}× | {lanes} |"
        )
    reps = len(rows[0].policy_us) if rows else 0
    lines += [
        "",
        f"policy: one `Policy.run_instant(t, [SetBackendStatus(b, online)])` with all 8 "
        "backends paused and N jobs queued (a fifth in open sessions); it picks one job "
        f"through the lanes and starts it. {reps} repetitions cycling over the backends, each "
        "followed (untimed) by cancelling the started job and its session, pausing again and "
        "submitting replacements, so every pick sees exactly N queued jobs. cold-cache: the "
        "same, each pick right after streaming 64 MiB through memory (as when other work ran "
        "since the last decision). naive rescan: `bench.decision.naive_pick`, the backend's "
        "oldest queued job by a scan of every job, on the same queue. Each pass runs apart "
        "(interleaving the rescan would evict the policy's data by an amount growing with N).",
        "",
    ]
    return lines


def verdicts(sim_rows: list[SimRow], decision_rows: list[DecisionRow]) -> list[str]:
    lines = ["## targets", ""]
    jobs, limit = SIMULATE_TARGET
    sim = [r for r in sim_rows if r.engine == "memory" and r.jobs == jobs and r.run is not None]
    if sim:
        wall = sim[0].run.result["wall"] if sim[0].run else 0.0
        met = "met" if wall < limit else "**not met**"
        lines.append(f"- {jobs:,} jobs simulated in under {limit:.0f} s: {wall:.1f} s, {met}")
    queued, budget = DECISION_TARGET
    dec = [r for r in decision_rows if r.queued == queued]
    if dec:
        p50, p95 = summary(dec[0].policy_us)
        c50, c95 = summary(dec[0].cold_us)
        met = "met" if max(p95, c95) < budget else "**not met**"
        lines.append(
            f"- one decision with {queued:,} queued under {budget:.0f} µs: "
            f"median {p50:.1f} µs, p95 {p95:.1f} µs (cold caches: median {c50:.1f} µs, "
            f"p95 {c95:.1f} µs), {met}"
        )
    if len(lines) == 2:
        lines.append("- not measured in this run (needs 1M simulate and 100k decision)")
    return [*lines, ""]
