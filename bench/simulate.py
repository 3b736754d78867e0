"""The "simulate" rows: `manage.py simulate` end to end, one fresh process per run."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .core import ChildRun, TraceStats, run_child, trace_stats
from .generate import generate, shape, write


@dataclass(frozen=True)
class SimRow:
    engine: str  # memory, db/sqlite, db/postgresql
    jobs: int
    run: ChildRun | None  # None: not run (see note)
    stats: TraceStats | None = None
    same_as_memory: bool | None = None
    note: str = ""


class Scenarios:
    """Generated scenario files in a work directory, made once per size (not timed)."""

    def __init__(self, workdir: Path, seed: int) -> None:
        self.workdir = workdir
        self.seed = seed
        self.paths: dict[int, Path] = {}

    def path(self, n_jobs: int) -> Path:
        if n_jobs not in self.paths:
            document = generate(n_jobs, self.seed)
            print(f"  generated {n_jobs} jobs: {shape(document)}", flush=True)
            self.paths[n_jobs] = write(document, self.workdir / f"scenario-{n_jobs}.json")
        return self.paths[n_jobs]


def run_simulate(
    scenarios: Scenarios,
    n_jobs: int,
    engine: str,
    env: dict[str, str],
    profile: Path | None = None,
    progress: bool = False,
) -> tuple[ChildRun, Path]:
    """One `simulate` child; returns its measurements and the trace it wrote."""
    workdir = scenarios.workdir
    tag = f"{engine.replace('/', '-')}-{n_jobs}{'-profile' if profile else ''}"
    tag += "-progress" if progress else ""
    out, result = workdir / f"trace-{tag}.json", workdir / f"result-{tag}.json"
    args = ["--scenario", str(scenarios.path(n_jobs)), "--out", str(out), "--result", str(result)]
    args += ["--engine", "memory" if engine == "memory" else "db"]
    if profile is not None:
        args += ["--profile", str(profile)]
    if progress:
        args.append("--progress")
    print(f"  simulate {engine} {n_jobs} jobs{' with a progress bar' if progress else ''} ...")
    run = run_child(args, env)
    if run.returncode != 0:
        raise RuntimeError(f"simulate {engine} {n_jobs} failed with exit status {run.returncode}")
    print(f"    {run.result['wall']:.2f} s, peak RSS {run.peak_rss_mb:.0f} MB", flush=True)
    return run, out


def _load(path: Path) -> dict[str, Any]:
    with path.open() as f:
        trace: dict[str, Any] = json.load(f)
    return trace


def db_engines() -> list[tuple[str, dict[str, str]]]:
    """SQLite always; PostgreSQL too when DATABASE_URL names one."""
    base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    engines = [("db/sqlite", base)]
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://", "postgis://", "pgsql://")):
        engines.append(("db/postgresql", dict(os.environ)))
    return engines


def simulate_rows(
    scenarios: Scenarios, sizes: list[int], db_sizes: list[int], db_budget: float, repeat: int = 1
) -> list[SimRow]:
    """Memory-engine rows (median of `repeat` runs), then db rows for each db engine."""
    rows: list[SimRow] = []
    memory_traces: dict[int, Path] = {}
    env = dict(os.environ)
    for n in sorted(set(sizes) | set(db_sizes)):
        runs = []
        for _ in range(repeat if n in sizes else 1):
            run, out = run_simulate(scenarios, n, "memory", env)
            runs.append(run)
        memory_traces[n] = out
        runs.sort(key=lambda r: r.result["wall"])
        notes = [] if n in sizes else ["reference for the db rows"]
        if len(runs) > 1:
            walls = [r.result["wall"] for r in runs]
            notes.append(f"median of {len(runs)} runs (wall {walls[0]:.2f}–{walls[-1]:.2f} s)")
        stats = trace_stats(_load(out))
        rows.append(SimRow("memory", n, runs[len(runs) // 2], stats, note="; ".join(notes)))
    if sizes:
        rows.append(_with_progress(scenarios, max(sizes), repeat, env))
    for engine, engine_env in db_engines():
        done: list[tuple[int, float]] = []  # (jobs, wall seconds) of the db runs so far
        for n in sorted(db_sizes):
            estimate = _extrapolate(done, n)
            if estimate is not None and estimate[0] > db_budget:
                note = f"not run: {_estimate_note(estimate)}, over the --db-budget of "
                rows.append(SimRow(engine, n, None, note=note + _duration(db_budget)))
                continue
            run, out = run_simulate(scenarios, n, engine, engine_env)
            same = _load(out) == _load(memory_traces[n])
            rows.append(SimRow(engine, n, run, same_as_memory=same))
            done.append((n, run.result["wall"]))
        for n in sorted(set(sizes) - set(db_sizes)):
            estimate = _extrapolate(done, n)
            if estimate is not None:
                note = f"not run (not in --db-sizes): {_estimate_note(estimate)}"
                rows.append(SimRow(engine, n, None, note=note))
    return rows


def _with_progress(scenarios: Scenarios, n: int, repeat: int, env: dict[str, str]) -> SimRow:
    """The largest memory run drawing the progress bar (as on a terminal), against the same
    run without it: pairs run back to back, so a busy machine slows both alike."""
    ratios, runs = [], []
    for _ in range(max(repeat, 3)):
        plain = run_simulate(scenarios, n, "memory", env)[0]
        drawn = run_simulate(scenarios, n, "memory", env, progress=True)[0]
        ratios.append(drawn.result["run"] / plain.result["run"])
        runs.append(drawn)
    order = sorted(range(len(ratios)), key=ratios.__getitem__)
    middle = order[len(order) // 2]
    note = (
        f"progress bar drawn: {100 * (ratios[middle] - 1):+.1f}% run time against a run "
        f"without it (median of {len(ratios)} back-to-back pairs; target within 5%)"
    )
    return SimRow("memory + progress bar", n, runs[middle], note=note)


def _extrapolate(done: list[tuple[int, float]], n: int) -> tuple[float, str] | None:
    """Estimated seconds for `n` jobs: a power law through the two largest runs, else linear.

    The exponent is at least 1: each db step reloads the live state and sums the
    usage window, so the cost per job does not fall with size.
    """
    if not done:
        return None
    n1, t1 = done[-1]
    if len(done) == 1:
        return t1 * n / n1, f"linear from the {n1}-job run"
    n0, t0 = done[-2]
    k = max(1.0, math.log(t1 / t0) / math.log(n1 / n0))
    return t1 * (n / n1) ** k, f"n^{k:.2f} fitted to the {n0}- and {n1}-job runs"


def _estimate_note(estimate: tuple[float, str]) -> str:
    seconds, how = estimate
    return f"≈{_duration(seconds)} extrapolated ({how})"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
