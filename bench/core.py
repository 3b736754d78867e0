"""Shared measurement helpers: child processes, percentiles, trace statistics."""

from __future__ import annotations

import json
import resource
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
    """A finished child process: its JSON answer and wall time."""

    result: dict[str, Any]
    wall: float  # seconds, the whole process (interpreter start included)
    returncode: int

    @property
    def peak_rss_mb(self) -> float:
        return float(self.result.get("peak_rss_mb", 0.0))


def run_child(args: list[str], env: dict[str, str] | None = None) -> ChildRun:
    """Run `python -m bench.child ARGS` in a fresh interpreter; it answers in `--result`."""
    result_path = Path(args[args.index("--result") + 1])
    start = time.perf_counter()
    returncode = subprocess.run(
        [sys.executable, "-m", "bench.child", *args], cwd=ROOT, env=env
    ).returncode
    wall = time.perf_counter() - start
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    return ChildRun(result, wall, returncode)


def peak_rss_mb() -> float:
    """This process image's peak resident memory (VmHWM), in MiB.

    Not `ru_maxrss`: Linux carries the parent's resident size into a child's
    `ru_maxrss` across fork and exec (so RUSAGE_CHILDREN and wait4 report at least
    the parent's size), while VmHWM restarts with the new image at exec.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
