"""`manage.py simulate SCENARIO.json --out TRACE.json [--engine memory|db]`."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from scheduler.simulation import MemoryEngine, ScenarioError, dump_trace, load_scenario, simulate


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

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            scenario = load_scenario(options["scenario"])
        except ScenarioError as error:
            self.stderr.write(f"simulate: bad scenario: {error}")
            sys.exit(2)
        if options["engine"] == "db":
            from scheduler.simulation_db import run_on_scratch_database

            try:
                trace = run_on_scratch_database(scenario)
            except ScenarioError as error:  # a key the db engine does not run
                self.stderr.write(f"simulate: bad scenario: {error}")
                sys.exit(2)
        else:
            trace = simulate(scenario, MemoryEngine(scenario))
        dump_trace(trace, options["out"])
