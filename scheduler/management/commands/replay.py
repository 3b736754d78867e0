"""`manage.py replay [--out FILE] [--trace FILE] [--check]` (docs/rules.md, "Replaying a
live run")."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError

from scheduler.replay import ReplayError, replay_live_run, summary
from scheduler.simulation import ScenarioError, dump_trace


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

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            replay = replay_live_run()
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
        difference = replay.difference
        if difference is None:
            self.stdout.write(f"identical: {summary(replay.live)}")
            return
        self.stdout.write(str(difference))
        if options["check"]:
            sys.exit(1)
