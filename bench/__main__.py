"""`python -m bench`: measure simulate throughput and single-decision latency.

Prints a Markdown report and writes it to artifacts/bench.md. Every number in
it is measured in this run; the scenarios are generated (seeded) into a
temporary directory first, and that time is not counted.

`python -m bench --live` measures the live dashboard instead (websocket update
latency, page server time over a large history) and writes artifacts/bench-live.md.

`python -m bench --whatif` measures the operators' what-if: both futures of a
10k-job horizon from a busy live state, and writes artifacts/bench-whatif.md.

`python -m bench --engine` measures the live engine at scale (submissions, leader
steps, pages and the plan at up to 100k queued jobs, dispatch throughput,
`simulate --engine db`) on PostgreSQL and writes artifacts/bench-engine.md.
"""

from __future__ import annotations

import argparse
import io
import os
import pstats
import shlex
import sys
import tempfile
from pathlib import Path

from . import chaos, decision, engine, live, whatif
from .core import ROOT
from .report import (
    decision_table,
    header,
    latency_table,
    live_verdicts,
    pages_sections,
    simulate_table,
    verdicts,
)
from .simulate import Scenarios, run_simulate, simulate_rows

QUICK_SIZES = [10_000]
QUICK_DECISION_SIZES = [1_000, 10_000]
PROFILED_PICKS = 20_000  # enough for pstats' millisecond columns to show a µs-scale pick


def _sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=[10_000, 100_000, 1_000_000],
        help="jobs per scenario for the memory-engine simulate rows",
    )
    parser.add_argument(
        "--db-sizes",
        type=_sizes,
        default=[1_000, 10_000],
        help="jobs per scenario for the db-engine rows (SQLite; PostgreSQL too when "
        "DATABASE_URL names one)",
    )
    parser.add_argument(
        "--decision-sizes",
        type=_sizes,
        default=[1_000, 10_000, 100_000],
        help="queued jobs for the decision rows",
    )
    parser.add_argument("--reps", type=int, default=200, help="timed decisions per size")
    parser.add_argument(
        "--db-budget",
        type=float,
        default=1800.0,
        help="skip a db size whose extrapolated run exceeds this many seconds",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"CI smoke: simulate {QUICK_SIZES}, decision {QUICK_DECISION_SIZES}, no db",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="memory-engine runs per size (median reported)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--profile",
        type=int,
        metavar="JOBS",
        help="also cProfile a memory simulate and a decision run at this size "
        "(artifacts/profile-*.txt; not part of the timings)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="report file (default artifacts/bench.md; with --live, artifacts/bench-live.md)",
    )
    parser.add_argument("--workdir", type=Path, help="keep scenarios and traces here")
    live_group = parser.add_argument_group("live dashboard (--live)")
    live_group.add_argument(
        "--live",
        action="store_true",
        help="measure the live dashboard instead: websocket update latency and page time",
    )
    live_group.add_argument("--clients", type=int, default=200, help="websocket clients")
    live_group.add_argument("--changes", type=int, default=50, help="job submissions to time")
    live_group.add_argument(
        "--fanout",
        type=int,
        default=1000,
        help="websocket clients spread over the cluster's two web processes (PostgreSQL and "
        "Redis); 0 skips it",
    )
    live_group.add_argument(
        "--gap",
        type=float,
        default=0.2,
        help="seconds between one change reaching every client and the next change",
    )
    live_group.add_argument(
        "--history", type=_sizes, default=[100_000], help="finished jobs for the page rows"
    )
    live_group.add_argument("--page-reps", type=int, default=20, help="timed requests per page")
    engine_group = parser.add_argument_group("live engine (--engine)")
    engine_group.add_argument(
        "--engine",
        action="store_true",
        help="measure the live engine at scale instead (PostgreSQL in DATABASE_URL)",
    )
    engine_group.add_argument(
        "--queued",
        type=_sizes,
        default=[1_000, 10_000, 100_000],
        help="queue sizes for the engine rows",
    )
    engine_group.add_argument("--posts", type=int, default=200, help="timed POST /jobs per size")
    whatif_group = parser.add_argument_group("what-if (--whatif)")
    whatif_group.add_argument(
        "--whatif", action="store_true", help="measure the operators' what-if instead"
    )
    whatif_group.add_argument(
        "--known", type=int, default=8_000, help="jobs queued when the what-if starts"
    )
    whatif_group.add_argument(
        "--per-hour", type=float, default=84.0, help="synthetic jobs an hour (over all backends)"
    )
    whatif_group.add_argument("--hours", type=float, default=24.0, help="the horizon")
    whatif_group.add_argument("--whatif-reps", type=int, default=7, help="timed what-ifs")
    chaos_group = parser.add_argument_group("chaos (--chaos)")
    chaos_group.add_argument(
        "--chaos", action="store_true", help="run the cluster under faults instead"
    )
    chaos_group.add_argument("--chaos-jobs", type=int, default=10_000, help="jobs submitted")
    chaos_group.add_argument(
        "--chaos-seconds", type=float, default=480.0, help="seconds the submissions span"
    )
    chaos_group.add_argument("--leader-kills", type=int, default=100)
    chaos_group.add_argument(
        "--no-browser", action="store_true", help="without chromium on the dashboard"
    )
    args = parser.parse_args(argv)
    if args.out is None:
        name = "bench-live.md" if args.live else "bench-engine.md" if args.engine else "bench.md"
        name = "bench-whatif.md" if args.whatif else name
        name = "bench-chaos.md" if args.chaos else name
        args.out = ROOT / "artifacts" / name
    if args.quick:
        args.sizes, args.db_sizes, args.decision_sizes = QUICK_SIZES, [], QUICK_DECISION_SIZES
    return args


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        run(args, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="qdash-bench-") as workdir:
            run(args, Path(workdir))


def run(args: argparse.Namespace, workdir: Path) -> None:
    if args.live:
        run_live(args, workdir)
        return
    if args.engine:
        run_engine(args, workdir)
        return
    if args.whatif:
        run_whatif(args, workdir)
        return
    if args.chaos:
        run_chaos(args, workdir)
        return
    load_before = os.getloadavg()[0]
    print("decision:", flush=True)
    decision_rows = []
    for n in args.decision_sizes:
        row = decision.measure(n, args.reps, args.seed)
        p50, p95 = decision.summary(row.policy_us)
        print(f"  {n} queued: median {p50:.1f} µs, p95 {p95:.1f} µs", flush=True)
        decision_rows.append(row)
    print("simulate:", flush=True)
    scenarios = Scenarios(workdir, args.seed)
    sim_rows = simulate_rows(scenarios, args.sizes, args.db_sizes, args.db_budget, args.repeat)
    if decision_rows or sim_rows:
        report = [
            *header(args.seed, shlex.join(sys.argv[1:]), load_before),
            *verdicts(sim_rows, decision_rows),
            *simulate_table(sim_rows),
            *decision_table(decision_rows),
        ]
        text = "\n".join(report)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print()
        print(text)
        print(f"(written to {os.path.relpath(args.out)})")
    if args.profile:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        profile(scenarios, args.profile, args.seed, args.out.parent)


def run_live(args: argparse.Namespace, workdir: Path) -> None:
    load_before = os.getloadavg()[0]
    latency = None
    if args.clients and args.changes:
        print(f"live: {args.clients} websocket clients, {args.changes} changes", flush=True)
        latency = live.measure_latency(args.clients, args.changes, args.gap, workdir)
    fanout = None
    if args.fanout and args.changes:
        print(f"live: {args.fanout} websocket clients across the cluster", flush=True)
        fanout = live.measure_fanout(args.fanout, args.changes, args.gap, workdir, _pg_server())
    page_runs = []
    for n_jobs in args.history:
        print(f"live: pages over {n_jobs:,} finished jobs", flush=True)
        runs = live.measure_pages(n_jobs, args.page_reps, args.seed, workdir)
        page_runs += [(n_jobs, run) for run in runs]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = [
        *header(args.seed, shlex.join(sys.argv[1:]), load_before, live=True),
        *live_verdicts(latency, page_runs, fanout),
        *(latency_table(latency) if latency else []),
        *(latency_table(fanout) if fanout else []),
        *pages_sections(page_runs, args.out.parent),
    ]
    text = "\n".join(report)
    args.out.write_text(text)
    print()
    print(text)
    print(f"(written to {os.path.relpath(args.out)})")


def run_engine(args: argparse.Namespace, workdir: Path) -> None:
    load_before = os.getloadavg()[0]
    result = engine.measure(args.queued, args.posts, workdir, args.seed)
    report = [
        *header(args.seed, shlex.join(sys.argv[1:]), load_before, engine=True),
        *engine.report(result),
    ]
    text = "\n".join(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print()
    print(text)
    print(f"(written to {os.path.relpath(args.out)})")


def run_whatif(args: argparse.Namespace, workdir: Path) -> None:
    print(
        f"what-if: {args.known:,} known jobs, {args.per_hour:g} synthetic jobs an hour", flush=True
    )
    result = whatif.measure(
        args.known, args.per_hour, args.hours, args.whatif_reps, args.seed, workdir
    )
    text = "\n".join(whatif.report(result, args.hours, shlex.join(sys.argv[1:])))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print()
    print(text)
    print(f"(written to {os.path.relpath(args.out)})")


def _pg_server() -> str:
    """The maintenance database of DATABASE_URL's PostgreSQL server (else the local one)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        url = "postgresql://postgres@127.0.0.1:5432/postgres"
    return url.rsplit("/", 1)[0] + "/postgres"


def run_chaos(args: argparse.Namespace, workdir: Path) -> None:
    server = _pg_server()
    config = chaos.ChaosConfig(
        jobs=args.chaos_jobs,
        duration=args.chaos_seconds,
        leader_kills=args.leader_kills,
        browser=not args.no_browser,
        seed=args.seed,
    )
    load_before = os.getloadavg()[0]
    print(f"chaos: {config.jobs:,} jobs, {config.leader_kills} leader kills", flush=True)
    result = chaos.run(config, workdir, server)
    text = "\n".join(
        [*header(args.seed, shlex.join(sys.argv[1:]), load_before), chaos.report(result)]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print()
    print(text)
    print(f"(written to {os.path.relpath(args.out)})")


def profile(scenarios: Scenarios, n_jobs: int, seed: int, outdir: Path) -> None:
    """Top functions by cumulative and by own time, for whoever optimises the scheduler.

    Writes the .pstats files next to the text, for pstats or snakeviz.
    """
    sim_stats = outdir / f"profile-simulate-{n_jobs}.pstats"
    run_simulate(scenarios, n_jobs, "memory", dict(os.environ), profile=sim_stats)
    decision_stats = outdir / f"profile-decision-{n_jobs}.pstats"
    decision.profile_picks(n_jobs, PROFILED_PICKS, seed, decision_stats)
    for stats_path in (sim_stats, decision_stats):
        target = stats_path.with_suffix(".txt")
        target.write_text(_top(stats_path))
        print(f"profile: {os.path.relpath(target)} (+ .pstats)")


def _top(path: Path, limit: int = 15) -> str:
    out = io.StringIO()
    for order in ("cumulative", "tottime"):
        out.write(f"### top {limit} by {order}\n")
        stats = pstats.Stats(str(path), stream=out)
        stats.sort_stats(order).print_stats(limit)
    return out.getvalue().replace(str(ROOT) + "/", "")


if __name__ == "__main__":
    main(sys.argv[1:])
