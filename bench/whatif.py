"""`python -m bench --whatif`: the what-if of a busy facility. Measures, never asserts.

A child interpreter (`bench.whatif_child`) fills a scratch SQLite database with a
live state (queued jobs through the leader, sessions, windows, prior usage) and
times an operator's what-if over a horizon: an exclusive window, a share change
and a synthetic load, both futures on the pure rules. The target: both futures
of a 10k-job horizon in under 2 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .core import ROOT, percentile

TARGET_S = 2.0  # both futures of a 10k-job horizon, the snapshot included


def measure(
    known: int, per_hour: float, hours: float, reps: int, seed: int, workdir: Path
) -> dict[str, Any]:
    """Run the child on a fresh scratch database; its timings."""
    database = workdir / "whatif.sqlite3"
    database.unlink(missing_ok=True)
    result = workdir / "whatif.json"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "REDIS_URL": ""}
    env["QDASH_EAGER_LEADER"] = "1"
    command = [
        sys.executable,
        "-m",
        "bench.whatif_child",
        *("--known", str(known), "--per-hour", str(per_hour), "--hours", str(hours)),
        *("--reps", str(reps), "--seed", str(seed), "--result", str(result)),
    ]
    subprocess.run(command, cwd=ROOT, env=env, check=True)
    answer: dict[str, Any] = json.loads(result.read_text())
    return answer


def _ms(values: list[float]) -> str:
    return f"{percentile(values, 50) * 1000:.0f} / {percentile(values, 95) * 1000:.0f}"


def report(result: dict[str, Any], hours: float, command: str) -> list[str]:
    counts = result["counts"]
    jobs = counts["known"] + counts["synthetic"]
    run = result["phases"]["run"]
    met = "met" if percentile(run, 95) < TARGET_S else "NOT met"
    lines = [
        "# qdash what-if benchmark",
        "",
        f"`python -m bench {command}` · {os.cpu_count()} CPUs · load before "
        f"{os.getloadavg()[0]:.2f}",
        "",
        f"A {hours:g} h horizon of {jobs:,} jobs ({counts['known']:,} known at the start, "
        f"{counts['synthetic']:,} synthetic arrivals; {counts['started_with']:,} start in the "
        f"future with the changes), {counts['sessions']} live sessions, 8 backends. Changes: "
        "an exclusive window, a share, the synthetic load. SQLite scratch database "
        f"(filled in {result['fill_s']:.1f} s, not timed).",
        "",
        f"**Both futures, snapshot included (p95): {percentile(run, 95):.2f} s — target "
        f"< {TARGET_S:g} s: {met}.** Equal answers on every repetition: "
        f"{'yes' if result['deterministic'] else 'NO'}.",
        "",
        "| phase | p50 / p95 (ms) |",
        "|---|---|",
        f"| snapshot (a fresh leader's load) | {_ms(result['phases']['snapshot'])} |",
        f"| both futures (pure rules, on copies) | {_ms(result['phases']['futures'])} |",
        f"| metrics (waits, backends, sessions, timelines) | {_ms(result['phases']['metrics'])} |",
        f"| `whatif_run` (all of the above) | {_ms(run)} |",
        f"| `GET /what-if/run` (rendered page part, {counts['page_bytes'] / 1e3:,.0f} kB) "
        f"| {_ms(result['page'])} |",
        "",
    ]
    return lines
