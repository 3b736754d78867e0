"""What a trace says at a glance: one summary line, and the per-backend and per-instance
tables an operator would otherwise compute from it (`simulate --summary`, as `sreport`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from scheduler.progress import duration

FINAL_ORDER = ("Completed", "Failed", "Cancelled", "Rejected")


def summary_line(trace: Mapping[str, Any], *, seconds: float, written_to: str) -> str:
    """`20,000 jobs: 19,870 Completed, 96 Failed, 34 Cancelled, 0 Rejected; 412 sessions;
    simulated 4 d 03:12:00 in 2.8 s (7,100 jobs/s); trace written to t.json`."""
    jobs = trace["jobs"]
    states = Counter(job["status"] for job in jobs.values())
    shown = [f"{states[state]:,} {state}" for state in FINAL_ORDER]
    shown += [f"{n:,} {state}" for state, n in states.items() if state not in FINAL_ORDER]
    rate = len(jobs) / seconds if seconds > 0 else 0.0
    return (
        f"{len(jobs):,} jobs: {', '.join(shown)}; {_sessions(len(trace['sessions']))}; "
        f"simulated {duration(trace['end_time'])} in {seconds:.1f} s ({rate:,.0f} jobs/s); "
        f"trace written to {written_to}"
    )


def _sessions(count: int) -> str:
    return f"{count:,} session" + ("" if count == 1 else "s")


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The value at `fraction` of the sorted values (nearest rank), None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * fraction // 1))
    return float(ordered[int(rank) - 1])


def backend_rows(trace: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per backend: jobs started, busy share of the run, and the waits of those jobs."""
    end = trace["end_time"]
    rows = []
    for name in sorted(trace["starts"]):
        started = [job for job in trace["jobs"].values() if job["backend"] == name]
        started = [job for job in started if job["started_at"] is not None]
        busy = sum((job["ended_at"] or end) - job["started_at"] for job in started)
        rows.append(_row(name, started, busy=100 * busy / end if end else 0.0))
    return rows


def instance_rows(trace: Mapping[str, Any], instances: Mapping[str, str]) -> list[dict[str, Any]]:
    """Per instance: jobs submitted, jobs started, usage at the end, and their waits.
    `instances` gives each job's instance (the scenario's submissions)."""
    by_instance: dict[str, list[dict[str, Any]]] = {name: [] for name in trace["usage"]}
    for job_id, job in trace["jobs"].items():
        by_instance.setdefault(instances[job_id], []).append(job)
    rows = []
    for name in sorted(by_instance):
        jobs = by_instance[name]
        started = [job for job in jobs if job["started_at"] is not None]
        rows.append({**_row(name, started), "jobs": len(jobs), "usage": trace["usage"].get(name)})
    return rows


def _row(name: str, started: list[dict[str, Any]], busy: float | None = None) -> dict[str, Any]:
    waits = [job["started_at"] - job["submitted_at"] for job in started]
    return {
        "name": name,
        "started": len(started),
        "busy": busy,
        "wait_p50": percentile(waits, 0.5),
        "wait_p95": percentile(waits, 0.95),
    }


def tables(trace: Mapping[str, Any], instances: Mapping[str, str]) -> list[str]:
    """Both tables as text."""
    backends = [
        [r["name"], f"{r['started']:,}", f"{r['busy']:.1f}", _s(r["wait_p50"]), _s(r["wait_p95"])]
        for r in backend_rows(trace)
    ]
    per_instance = [
        [
            r["name"],
            f"{r['jobs']:,}",
            f"{r['started']:,}",
            _s(r["usage"]),
            _s(r["wait_p50"]),
            _s(r["wait_p95"]),
        ]
        for r in instance_rows(trace, instances)
    ]
    return [
        *_table(["backend", "started", "busy %", "wait p50 s", "wait p95 s"], backends),
        "",
        *_table(
            ["instance", "jobs", "started", "usage s", "wait p50 s", "wait p95 s"], per_instance
        ),
    ]


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first, *rest = cells
        right = (cell.rjust(width) for cell, width in zip(rest, widths[1:], strict=True))
        return "  ".join([first.ljust(widths[0]), *right])

    return [line(header), "  ".join("-" * w for w in widths), *(line(row) for row in rows)]
