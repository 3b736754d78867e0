"""One measured `simulate` run, in its own interpreter (started by `bench.simulate`).

It does what `manage.py simulate SCENARIO --out TRACE [--engine ...]` does, timing
each phase, and writes the timings as JSON to `--result`.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import django

from .core import peak_rss_mb

if TYPE_CHECKING:
    from scheduler.sim.scenario import Scenario


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--engine", choices=["memory", "db"], default="memory")
    parser.add_argument("--result", required=True)
    parser.add_argument("--profile", help="write cProfile stats of the measured phases here")
    parser.add_argument(
        "--progress", action="store_true", help="draw the progress bar, as on a terminal"
    )
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qdash.settings")
    django.setup()
    from scheduler.sim.memory import MemoryEngine
    from scheduler.sim.run import simulate
    from scheduler.sim.scenario import load_scenario
    from scheduler.sim.trace import dump_trace

    baseline_rss = peak_rss_mb()
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    t0 = time.perf_counter()
    scenario = load_scenario(args.scenario)
    t1 = time.perf_counter()
    setup = 0.0
    if args.engine == "memory" and args.progress:
        trace = _simulate_with_progress(scenario)
    elif args.engine == "memory":
        trace = simulate(scenario, MemoryEngine(scenario))
    else:
        trace, setup = _simulate_on_scratch_database(scenario)
    t2 = time.perf_counter()
    dump_trace(trace, args.out)
    t3 = time.perf_counter()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    result = {
        "load": t1 - t0,
        "run": t2 - t1 - setup,
        "db_setup": setup,
        "dump": t3 - t2,
        "wall": t3 - t0,
        "peak_rss_mb": peak_rss_mb(),
        "baseline_rss_mb": baseline_rss,
        "db_vendor": _vendor() if args.engine == "db" else None,
    }
    Path(args.result).write_text(json.dumps(result))


def _simulate_with_progress(scenario: Scenario) -> dict[str, Any]:
    """`simulate` drawing its progress bar, into a buffer that stands for a terminal."""
    import io

    from scheduler.progress import Feedback
    from scheduler.sim.memory import MemoryEngine
    from scheduler.sim.run import simulate

    bar = Feedback("simulating", len(scenario.events), enabled=True, stream=io.StringIO())
    try:
        return simulate(scenario, MemoryEngine(scenario), bar.advance)
    finally:
        bar.close()


def _simulate_on_scratch_database(scenario: Scenario) -> tuple[dict[str, Any], float]:
    """`run_on_scratch_database` itself, with its database set-up and teardown timed."""
    from scheduler.sim import db as simulation_db

    spent = [0.0]

    def timed(function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        return wrapper

    simulation_db.setup_databases = timed(simulation_db.setup_databases)
    simulation_db.teardown_databases = timed(simulation_db.teardown_databases)
    return simulation_db.run_on_scratch_database(scenario), spent[0]


def _vendor() -> str:
    from django.db import connection

    return str(connection.vendor)


if __name__ == "__main__":
    main()
