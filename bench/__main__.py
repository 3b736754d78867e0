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

`python -m bench --edge` measures the API's edge on the cluster (healthz, an
authenticated read and a submission, with 2 and 4 web processes, and a profile of
both API calls) and writes artifacts/bench-edge.md.

`python -m bench --history` fills PostgreSQL with millions of finished jobs, builds the
daily rollups, times the dashboard, /jobs, /usage and /fair-share against their targets,
prunes, and reports the database's size before and after: artifacts/bench-history.md.

`python -m bench --failover` times a leader's kill -9 to its successor's first
decision at up to 100k queued, with standbys that follow the leader's journal and,
as the baseline, with standbys that load in full, and writes artifacts/bench-failover.md.

`python -m bench --chaos` and `--fuzz` run the acceptance tiers of tests/acceptance
at full size (the cluster under faults; the API and the decoders under generated
input) and write artifacts/bench-chaos.md and artifacts/bench-fuzz.md. Every report
goes through one writer (`bench.report.write_report`).
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
from typing import Any

from tests.acceptance.chaos import harness as chaos
from tests.acceptance.chaos.config import ChaosConfig
from tests.acceptance.chaos.report import report as chaos_report
from tests.acceptance.fuzz import harness as fuzz
from tests.acceptance.fuzz.config import FuzzConfig
from tests.acceptance.fuzz.report import report as fuzz_report

from . import decision, devices, edge, engine, failover, history, live, whatif
from .core import ROOT
from .report import (
    decision_table,
    header,
    latency_table,
    live_verdicts,
    pages_sections,
    simulate_table,
    verdicts,
    write_report,
)
from .simulate import Scenarios, run_simulate, simulate_rows

QUICK_SIZES = [10_000]
QUICK_DECISION_SIZES = [1_000, 10_000]
PROFILED_PICKS = 20_000  # enough for pstats' millisecond columns to show a µs-scale pick


def _sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


# Each mode measures something else and writes its own report, artifacts/bench-MODE.md.
MODES = ("live", "engine", "failover", "edge", "whatif", "history", "chaos", "fuzz")
# Options by group (None: the simulate and decision rows): flag -> argparse keywords.
OPTIONS: dict[str | None, dict[str, dict[str, Any]]] = {
    None: {
        "--sizes": dict(
            type=_sizes,
            default=[10_000, 100_000, 1_000_000],
            help="jobs per scenario for the memory-engine simulate rows",
        ),
        "--db-sizes": dict(
            type=_sizes,
            default=[1_000, 10_000],
            help="jobs per scenario for the db-engine rows (SQLite; PostgreSQL too when "
            "DATABASE_URL names one)",
        ),
        "--decision-sizes": dict(
            type=_sizes, default=[1_000, 10_000, 100_000], help="queued jobs for the decision rows"
        ),
        "--reps": dict(type=int, default=200, help="timed decisions per size"),
        "--db-budget": dict(
            type=float,
            default=1800.0,
            help="skip a db size whose extrapolated run exceeds this many seconds",
        ),
        "--quick": dict(
            action="store_true",
            help=f"CI smoke: simulate {QUICK_SIZES}, decision {QUICK_DECISION_SIZES}, no db",
        ),
        "--repeat": dict(type=int, default=1, help="memory-engine runs per size (median reported)"),
        "--seed": dict(type=int, default=0),
        "--profile": dict(
            type=int,
            metavar="JOBS",
            help="also cProfile a memory simulate and a decision run at this size "
            "(artifacts/profile-*.txt; not part of the timings)",
        ),
        "--out": dict(type=Path, help="report file (default artifacts/bench.md, or bench-MODE.md)"),
        "--workdir": dict(type=Path, help="keep scenarios and traces here"),
        "--devices": dict(
            action="store_true", help="only the noisy-execution table (bench.devices)"
        ),
    },
    "live dashboard (--live)": {
        "--live": dict(
            action="store_true",
            help="measure the live dashboard instead: websocket update latency and page time",
        ),
        "--clients": dict(type=int, default=200, help="websocket clients"),
        "--changes": dict(type=int, default=50, help="job submissions to time"),
        "--fanout": dict(
            type=int,
            default=1000,
            help="websocket clients spread over the cluster's two web processes (PostgreSQL "
            "and Redis); 0 skips it",
        ),
        "--gap": dict(
            type=float,
            default=0.2,
            help="seconds between one change reaching every client and the next change",
        ),
        "--live-history": dict(
            type=_sizes, default=[100_000], help="finished jobs for the page rows"
        ),
        "--page-reps": dict(type=int, default=20, help="timed requests per page"),
    },
    "live engine (--engine)": {
        "--engine": dict(
            action="store_true",
            help="measure the live engine at scale instead (PostgreSQL in DATABASE_URL)",
        ),
        "--queued": dict(
            type=_sizes, default=[1_000, 10_000, 100_000], help="queue sizes for the engine rows"
        ),
        "--posts": dict(type=int, default=200, help="timed POST /jobs per size"),
        "--plan-seconds": dict(
            type=float, default=30.0, help="seconds the plan's age is sampled at each size"
        ),
        "--sizes-only": dict(
            action="store_true",
            help="only the rows per queue size (no sustained, dispatch or simulate rows)",
        ),
    },
    "the API's edge (--edge)": {
        "--edge": dict(
            action="store_true",
            help="measure healthz, an authenticated read and a submission on the cluster instead",
        ),
        "--webs": dict(type=_sizes, default=[2, 4], help="web processes, one cluster each"),
        "--edge-seconds": dict(type=float, default=10.0, help="seconds of wrk per call"),
        "--profile-reps": dict(
            type=int, default=200, help="calls of each under cProfile (0: no profile)"
        ),
    },
    "failover (--failover)": {
        "--failover": dict(
            action="store_true",
            help="time the leader's kill -9 to the next leader's first decision instead "
            "(PostgreSQL in DATABASE_URL)",
        ),
        "--failover-queued": dict(
            type=_sizes,
            default=[1_000, 10_000, 15_000, 100_000],
            help="queue sizes for a new leader's first step, cold and warm, in one process",
        ),
        "--kill-at": dict(
            type=_sizes, default=[15_000, 100_000], help="queue sizes to kill leaders at"
        ),
        "--kills": dict(type=int, default=10, help="leader kills per size and kind of standby"),
        "--trickle": dict(
            type=float, default=5.0, help="submissions a second while leaders are killed"
        ),
    },
    "what-if (--whatif)": {
        "--whatif": dict(action="store_true", help="measure the operators' what-if instead"),
        "--known": dict(type=int, default=8_000, help="jobs queued when the what-if starts"),
        "--per-hour": dict(
            type=float, default=84.0, help="synthetic jobs an hour (over all backends)"
        ),
        "--hours": dict(type=float, default=24.0, help="the horizon"),
        "--whatif-reps": dict(type=int, default=7, help="timed what-ifs"),
    },
    "history at scale (--history, PostgreSQL)": {
        "--history": dict(
            action="store_true",
            help="fill PostgreSQL with finished jobs; time the pages against their targets, "
            "prune, and report the database size",
        ),
        "--history-jobs": dict(
            type=lambda text: _sizes(text)[0], default=10_000_000, help="finished jobs"
        ),
        "--history-reps": dict(type=int, default=5, help="timed requests per page"),
        "--prune-days": dict(type=int, default=90, help="prune jobs older than this"),
    },
    "chaos, an acceptance tier (--chaos)": {
        "--chaos": dict(action="store_true", help="run the cluster under faults instead"),
        "--chaos-jobs": dict(type=int, default=10_000, help="jobs submitted"),
        "--chaos-seconds": dict(type=float, default=480.0, help="seconds the submissions span"),
        "--leader-kills": dict(type=int, default=100),
        "--no-browser": dict(action="store_true", help="without chromium on the dashboard"),
    },
    "fuzz, an acceptance tier (--fuzz)": {
        "--fuzz": dict(action="store_true", help="fuzz the API and the decoders instead"),
        "--fuzz-cases": dict(
            type=int, default=10_000, help="generated requests over all operations"
        ),
        "--fuzz-scenarios": dict(type=int, default=300, help="stateful scenarios following links"),
        "--fuzz-examples": dict(type=int, default=2_000, help="hypothesis examples per decoder"),
        "--fuzz-port": dict(type=int, help="the server's port (default: a free one)"),
        "--fuzz-hostile": dict(type=int, default=12, help="hostile programs per shape (0: none)"),
    },
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    for title, options in OPTIONS.items():
        group = parser if title is None else parser.add_argument_group(title)
        for flag, keywords in options.items():
            group.add_argument(flag, **keywords)
    args = parser.parse_args(argv)
    if args.out is None:
        mode = next((mode for mode in MODES if getattr(args, mode)), None)
        args.out = ROOT / "artifacts" / (f"bench-{mode}.md" if mode else "bench.md")
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
    modes = {
        "live": run_live,
        "engine": run_engine,
        "edge": run_edge,
        "failover": run_failover,
        "whatif": run_whatif,
        "history": run_history,
        "chaos": run_chaos,
        "fuzz": run_fuzz,
    }
    mode = next((mode for mode in MODES if getattr(args, mode)), None)
    if mode is not None:
        modes[mode](args, workdir)
        return
    load_before = os.getloadavg()[0]
    print("noisy execution on device profiles:", flush=True)
    noisy = devices.table(*devices.measure(quick=args.quick))
    if args.devices:  # that table alone
        args.decision_sizes, args.sizes, args.db_sizes = [], [], []
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
    if decision_rows or sim_rows or noisy:
        lines = [
            *header(args.seed, _command(), load_before),
            *(verdicts(sim_rows, decision_rows) if sim_rows or decision_rows else []),
            *(simulate_table(sim_rows) if sim_rows else []),
            *(decision_table(decision_rows) if decision_rows else []),
            *noisy,
        ]
        write_report(lines, args.out)
    if args.profile:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        profile(scenarios, args.profile, args.seed, args.out.parent)


def _command() -> str:
    return shlex.join(sys.argv[1:])


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
    for n_jobs in args.live_history:
        print(f"live: pages over {n_jobs:,} finished jobs", flush=True)
        runs = live.measure_pages(n_jobs, args.page_reps, args.seed, workdir)
        page_runs += [(n_jobs, run) for run in runs]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        *header(args.seed, _command(), load_before, live=True),
        *live_verdicts(latency, page_runs, fanout),
        *(latency_table(latency) if latency else []),
        *(latency_table(fanout) if fanout else []),
        *pages_sections(page_runs, args.out.parent),
    ]
    write_report(lines, args.out)


def run_engine(args: argparse.Namespace, workdir: Path) -> None:
    load_before = os.getloadavg()[0]
    result = engine.measure(
        args.queued,
        args.posts,
        workdir,
        args.seed,
        plan_seconds=args.plan_seconds,
        extras=not args.sizes_only,
    )
    lines = [*header(args.seed, _command(), load_before, engine=True), *engine.report(result)]
    write_report(lines, args.out)


def run_edge(args: argparse.Namespace, workdir: Path) -> None:
    load_before = os.getloadavg()[0]
    result = edge.measure(args.webs, args.edge_seconds, workdir, _pg_server(), args.profile_reps)
    lines = [*header(args.seed, _command(), load_before, engine=True), *edge.report(result)]
    write_report(lines, args.out)


def run_failover(args: argparse.Namespace, workdir: Path) -> None:
    load_before = os.getloadavg()[0]
    result = failover.measure(args.failover_queued, args.kill_at, args.kills, args.trickle, workdir)
    lines = [*header(args.seed, _command(), load_before, engine=True), *failover.report(result)]
    write_report(lines, args.out)


def run_whatif(args: argparse.Namespace, workdir: Path) -> None:
    print(
        f"what-if: {args.known:,} known jobs, {args.per_hour:g} synthetic jobs an hour", flush=True
    )
    result = whatif.measure(
        args.known, args.per_hour, args.hours, args.whatif_reps, args.seed, workdir
    )
    write_report(whatif.report(result, args.hours, _command()), args.out)


def run_history(args: argparse.Namespace, workdir: Path) -> None:
    load_before = os.getloadavg()[0]
    print(f"history: {args.history_jobs:,} finished jobs on PostgreSQL", flush=True)
    result = history.measure(
        args.history_jobs, args.history_reps, args.prune_days, workdir, _pg_server()
    )
    lines = [*header(args.seed, _command(), load_before), *history.report(result)]
    lines[0] = "# qdash history benchmarks"
    lines[5] = "- data: `bench.history_child`, generated on PostgreSQL (generate_series)"
    write_report(lines, args.out)


def _pg_server() -> str:
    """The maintenance database of DATABASE_URL's PostgreSQL server (else the local one)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        url = "postgresql://postgres@127.0.0.1:5432/postgres"
    return url.rsplit("/", 1)[0] + "/postgres"


def run_chaos(args: argparse.Namespace, workdir: Path) -> None:
    """The chaos acceptance tier at full size (tests/acceptance/chaos)."""
    config = ChaosConfig(
        jobs=args.chaos_jobs,
        duration=args.chaos_seconds,
        leader_kills=args.leader_kills,
        browser=not args.no_browser,
        seed=args.seed,
    )
    load_before = os.getloadavg()[0]
    print(f"chaos: {config.jobs:,} jobs, {config.leader_kills} leader kills", flush=True)
    result = chaos.run(config, workdir, _pg_server())
    write_report([*header(args.seed, _command(), load_before), *chaos_report(result)], args.out)


def run_fuzz(args: argparse.Namespace, workdir: Path) -> None:
    """The fuzz acceptance tier at full size (tests/acceptance/fuzz)."""
    config = FuzzConfig(
        cases=args.fuzz_cases,
        scenarios=args.fuzz_scenarios,
        decoder_examples=args.fuzz_examples,
        hostile_per_shape=args.fuzz_hostile,
        seed=args.seed,
        port=args.fuzz_port,
    )
    result = fuzz.run(config, workdir)
    write_report(fuzz_report(result, _command()), args.out)


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
