"""`manage.py scheduler`: the scheduler and executor without the web server.

Run one or more next to daphne processes (PostgreSQL + Redis): one leads, the
others wait as standbys and take over when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from scheduler.leader import LeaderLock
from scheduler.runner import Scheduler, freeze_startup_heap, scheduler_loop


class Command(BaseCommand):
    help = "Run the scheduler (and the executor): leader, or standby while another leads."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workers", type=int, default=2, help="executor threads")
        parser.add_argument(
            "--poll", type=float, default=5.0, help="longest sleep between ticks, in seconds"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        scheduler = Scheduler(workers=options["workers"])
        freeze_startup_heap()
        self.stdout.write("scheduler started (standby until it holds the leader lock)")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(scheduler_loop(scheduler, lock=LeaderLock(), poll=options["poll"]))
