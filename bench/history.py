"""`python -m bench --history`: the history at scale. Measures, never asserts.

A child (`bench.history_child`) fills a scratch PostgreSQL database next to the one
DATABASE_URL names (else the local server's) with N finished jobs over a year,
generated server-side (INSERT ... SELECT FROM generate_series: one run charge and two
events per started job), builds the daily rollups, times the pages in-process (server
time, the Django test client, an operator's session or a researcher's API key), prunes
jobs older than 90 days with an archive, and reports the database's size before and
after. Targets: the dashboard < 300 ms, /jobs pages < 100 ms, /usage over 90 days
< 500 ms, /fair-share < 100 ms (medians).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from .core import ROOT

TARGETS_MS = {
    "dashboard": 300.0,
    "jobs": 100.0,
    "usage": 500.0,
    "fair-share": 100.0,
}
DATABASE = "qdash_bench_history"


def _target(page: str) -> float:
    return TARGETS_MS[page.split(":")[0]]


def measure(jobs: int, reps: int, prune_days: int, workdir: Path, server: str) -> dict[str, Any]:
    """Run the child on a fresh scratch database of `server` (a maintenance-database URL)."""
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    result = workdir / "history.json"
    result.unlink(missing_ok=True)
    env = {**os.environ, "DATABASE_URL": server.rsplit("/", 1)[0] + f"/{DATABASE}", "REDIS_URL": ""}
    command = [
        sys.executable,
        "-m",
        "bench.history_child",
        *("--jobs", str(jobs), "--reps", str(reps), "--prune-days", str(prune_days)),
        *("--archive", str(workdir / "archive"), "--result", str(result)),
    ]
    try:
        subprocess.run(command, cwd=ROOT, env=env, check=True)
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    answer: dict[str, Any] = json.loads(result.read_text())
    return answer


def _mb(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def _rows(pages: dict[str, list[float]], empty: dict[str, list[float]]) -> list[str]:
    lines = [
        "| page | median (ms) | max (ms) | baseline: no history (ms) | target | |",
        "|---|---|---|---|---|---|",
    ]
    for page, values in pages.items():
        median, target = statistics.median(values), _target(page)
        met = "met" if median < target else "**missed**"
        base = statistics.median(empty[page])
        cells = [page, f"{median:.0f}", f"{max(values):.0f}", f"{base:.0f}"]
        lines.append("| " + " | ".join([*cells, f"< {target:.0f} ms", met]) + " |")
    return lines


def report(result: dict[str, Any]) -> list[str]:
    counts, pruned = result["counts"], result["prune"]
    per_day = result["rollup_s"] / max(1, result["days_rolled"]) * 1000
    met = sum(statistics.median(v) < _target(p) for p, v in result["pages"].items())
    return [
        f"## History at scale: {result['jobs']:,} finished jobs",
        "",
        f"{counts['jobs']:,} jobs, {counts['events']:,} events and {counts['charges']:,} usage "
        f"charges over {result['span_days']} days, 20 project instances, 8 backends, generated "
        f"server-side in {result['generate_s']:.0f} s "
        f"(VACUUM ANALYZE {result['analyze_s']:.0f} s). "
        f"Rollups: {result['days_rolled']} days, {counts['rollup_rows']:,} rows, built in "
        f"{result['rollup_s']:.1f} s ({per_day:.0f} ms a day: one idle-time piece of the "
        "leader's). Server time in-process, "
        f"{len(next(iter(result['pages'].values())))} requests per page after one warm-up.",
        "",
        f"**{met} of {len(result['pages'])} pages within target.** The baseline column is "
        "the same pages on the same database before the history was generated, timed in "
        "this run: what the machine's load alone costs.",
        "",
        *_rows(result["pages"], result["pages_empty"]),
        "",
        f"Pruning jobs older than {pruned['days']} days: {pruned['jobs']:,} jobs, "
        f"{pruned['events']:,} events and {pruned['charges']:,} charges deleted "
        f"({pruned['kept_charges']:,} charges kept for the usage window) in "
        f"{pruned['seconds']:.0f} s ({pruned['jobs'] / max(pruned['seconds'], 1e-9):,.0f} jobs/s), "
        f"archived to {_mb(pruned['archive_bytes'])} of gzip JSON lines.",
        "",
        "| database size (pg_database_size) | |",
        "|---|---|",
        f"| before pruning | {_mb(result['size_before'])} |",
        f"| after pruning | {_mb(result['size_after_prune'])} |",
        f"| after VACUUM FULL, then VACUUM ANALYZE, of jobs, events, charges | "
        f"{_mb(result['size_after_vacuum'])} |",
        "",
        f"After pruning ({result['counts_after']['jobs']:,} jobs left):",
        "",
        *_rows(result["pages_after"], result["pages_empty"]),
        "",
    ]
