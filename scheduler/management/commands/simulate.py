"""`manage.py simulate SCENARIO.json --out TRACE.json [--engine memory|db] [--summary]
[--quiet]`."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from scheduler.policy import model as m
from scheduler.progress import feedback
from scheduler.sim import summary
from scheduler.sim.memory import MemoryEngine
from scheduler.sim.run import simulate
from scheduler.sim.scenario import Scenario, ScenarioError, load_scenario
from scheduler.sim.trace import dump_trace


class Command(BaseCommand):
    help = "Replay a scheduling scenario on a virtual clock and write its trace."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("scenario", help="scenario JSON file (see docs/simulate.md)")
        parser.add_argument("--out", required=True, help="where to write the trace JSON")
        parser.add_argument(
            "--engine",
            choices=["memory", "db"],
            default="memory",
            help="memory: the pure policy; db: the database-backed engine",
        )
        parser.add_argument(
            "--summary",
            action="store_true",
            help="also print per-backend and per-instance tables (jobs, busy %%, waits)",
        )
        parser.add_argument(
            "--quiet", action="store_true", help="print nothing but errors (for scripts)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            scenario = load_scenario(options["scenario"])
        except ScenarioError as error:
            self.stderr.write(f"simulate: bad scenario: {error}")
            sys.exit(2)
        with feedback("simulating", len(scenario.events), quiet=options["quiet"]) as progress:
            trace = self._run(scenario, options["engine"], progress.advance)
            progress.phase("writing the trace")
            dump_trace(trace, options["out"])
        if options["quiet"]:
            return
        seconds = progress.seconds
        self.stdout.write(summary.summary_line(trace, seconds=seconds, written_to=options["out"]))
        if options["summary"]:
            instances = {a.job: a.instance for _, a in scenario.events if isinstance(a, m.Submit)}
            self.stdout.write("\n".join(["", *summary.tables(trace, instances)]))

    def _run(self, scenario: Scenario, engine: str, progress: Any) -> dict[str, Any]:
        if engine == "memory":
            return simulate(scenario, MemoryEngine(scenario), progress)
        from scheduler.sim.db import run_on_scratch_database

        try:
            return run_on_scratch_database(scenario, progress)
        except ScenarioError as error:  # a key the db engine does not run
            self.stderr.write(f"simulate: bad scenario: {error}")
            sys.exit(2)
