"""Shared measurement helpers: child processes, percentiles, trace statistics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ChildRun:
    """A finished child process: its JSON answer, wall time and peak memory."""

    result: dict[str, Any]
    wall: float  # seconds, the whole process (interpreter start included)
    peak_rss_mb: float  # ru_maxrss of this child alone (os.wait4)
    returncode: int


def run_child(args: list[str], env: dict[str, str] | None = None) -> ChildRun:
    """Run `python -m bench.child ARGS` in a fresh interpreter; measure only that child.

    `os.wait4` returns the rusage of the one child it reaps, so each run's peak RSS
    is its own (RUSAGE_CHILDREN would report the largest child so far).
    """
    result_path = Path(args[args.index("--result") + 1])
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bench.child", *args], cwd=ROOT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    # ru_maxrss is in KiB on Linux.
    return ChildRun(result, wall, usage.ru_maxrss / 1024, proc.returncode)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


@dataclass(frozen=True)
class TraceStats:
    """What a trace says about the load the generated scenario put on the backends."""

    busy_mean: float  # fraction of [0, last arrival] backends spent running jobs
    busy_max: float
    queue_mean: float  # time-averaged queued jobs (all backends) over [0, last arrival]
    queue_max: int
    statuses: dict[str, int]


def trace_stats(trace: dict[str, Any]) -> TraceStats:
    jobs = trace["jobs"].values()
    accepted = [j for j in jobs if j["status"] != "Rejected"]
    horizon = max((j["submitted_at"] for j in accepted), default=0) or 1
    busy: Counter[str] = Counter()
    changes: list[tuple[float, int]] = []
    for job in accepted:
        started, ended = job["started_at"], job["ended_at"]
        if started is not None:
            end = horizon if ended is None else min(ended, horizon)
            busy[job["backend"]] += max(0.0, end - started)
        left = started if started is not None else ended
        changes.append((job["submitted_at"], 1))
        if left is not None:
            changes.append((left, -1))
    changes.sort()
    depth = peak = 0
    area = 0.0
    last = 0.0
    for at, delta in changes:
        if at > horizon:
            break
        area += depth * (at - last)
        last = at
        depth += delta
        peak = max(peak, depth)
    area += depth * (horizon - last)
    fractions = [busy[b] / horizon for b in trace["starts"]]
    return TraceStats(
        busy_mean=sum(fractions) / len(fractions),
        busy_max=max(fractions),
        queue_mean=area / horizon,
        queue_max=peak,
        statuses=dict(Counter(j["status"] for j in jobs)),
    )
