"""`manage.py scheduler`: the scheduler without the web server.

Run one or more next to daphne processes (PostgreSQL + Redis): one leads, the
others wait as standbys and take over when it stops. With
`QDASH_EXECUTORS=workers` it runs no circuits (`manage.py executor` does);
otherwise it runs them in its own threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from scheduler.cluster import Heartbeat
from scheduler.devices.status import backends_check_all
from scheduler.engine.lock import LeaderLock
from scheduler.engine.loop import Scheduler
from scheduler.heap import freeze_startup_heap


class Command(BaseCommand):
    help = "Run the scheduler: leader, or standby while another leads."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workers", type=int, default=2, help="executor threads (inline)")
        parser.add_argument(
            "--poll", type=float, default=5.0, help="longest sleep between ticks, in seconds"
        )
        parser.add_argument(
            "--standby-poll",
            type=float,
            default=0.5,
            help="how often a standby tries for the leader lock, in seconds",
        )
        parser.add_argument(
            "--cold-standby",
            action="store_true",
            help="do not follow the leader's journal while standing by: load in full on "
            "taking over (the baseline of `make bench ARGS=--failover`)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        backends_check_all()  # a driver that does not load takes its backend offline
        scheduler = Scheduler(workers=options["workers"], follow=not options["cold_standby"])
        freeze_startup_heap()
        heartbeat = Heartbeat(
            "scheduler", detail=scheduler.detail, leading_since=lambda: scheduler.leading_since
        ).start()
        self.stdout.write("scheduler started (standby until it holds the leader lock)")
        try:
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(_run(scheduler, heartbeat, options))
        finally:
            heartbeat.stop()


async def _run(scheduler: Scheduler, heartbeat: Heartbeat, options: dict[str, Any]) -> None:
    task = asyncio.ensure_future(
        scheduler.run(
            lock=LeaderLock(),
            poll=options["poll"],
            standby_poll=options["standby_poll"],
            heartbeat=heartbeat,
        )
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)  # supervisord stops with SIGTERM
    with contextlib.suppress(asyncio.CancelledError):
        await task
