"""`manage.py replay [--out FILE] [--trace FILE] [--check]` (docs/rules.md, "Replaying a
live run")."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError

from scheduler.progress import feedback
from scheduler.sim.compare import summary
from scheduler.sim.replay import ReplayError, replay_live_run
from scheduler.sim.scenario import ScenarioError
from scheduler.sim.trace import dump_trace


class Command(BaseCommand):
    help = (
        "Rebuild a scenario from the live run's event log, replay it with the memory "
        "engine and compare the trace with what the live system did."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", help="write the rebuilt scenario JSON here")
        parser.add_argument("--trace", help="write the live run's trace JSON here")
        parser.add_argument(
            "--check", action="store_true", help="exit with status 1 when the traces differ"
        )
        parser.add_argument(
            "--quiet", action="store_true", help="no progress, and nothing printed when identical"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with feedback("replay", quiet=options["quiet"]) as progress:
                replay = replay_live_run(phase=progress.phase)
                progress.phase("comparing")
                difference = replay.difference
            if options["out"]:
                Path(options["out"]).write_text(json.dumps(replay.scenario, indent=1) + "\n")
            if options["trace"]:
                dump_trace(replay.live, options["trace"])
        except (ReplayError, ScenarioError) as error:
            self.stderr.write(f"replay: {error}")
            sys.exit(2)
        except OSError as error:
            self.stderr.write(f"replay: {error.filename}: {error.strerror}")
            sys.exit(2)
        except DatabaseError as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
            self.stderr.write(f"replay: cannot read the database: {first}")
            sys.exit(2)
        if difference is None:
            if not options["quiet"]:
                self.stdout.write(f"identical: {summary(replay.live)}")
            return
        self.stdout.write(str(difference))
        if options["check"]:
            sys.exit(1)
