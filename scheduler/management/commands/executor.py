"""`manage.py executor`: an executor worker (PostgreSQL, `QDASH_EXECUTORS=workers`).

It takes started jobs from procrastinate's queue and runs each one's circuits
with Aer in a child process capped at `--memory-mb` (`scheduler.execution`).
Run as many as the machines allow; each declares how many jobs it runs at once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from procrastinate.contrib.django import app

from scheduler import tasks
from scheduler.cluster import Heartbeat
from scheduler.execution import Worker

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run an executor worker: it runs started jobs' circuits with Aer."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency", type=int, default=1, help="jobs this worker runs at once"
        )
        parser.add_argument(
            "--memory-mb", type=int, default=4096, help="Aer's memory cap per job, in MB"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if "procrastinate.contrib.django" not in settings.INSTALLED_APPS:
            raise CommandError("executor workers need PostgreSQL (DATABASE_URL=postgresql://...)")
        if options["concurrency"] < 1 or options["memory_mb"] < 64:
            raise CommandError("--concurrency must be at least 1 and --memory-mb at least 64")
        worker = tasks.worker = Worker(
            concurrency=options["concurrency"], memory_mb=options["memory_mb"]
        )
        conf = settings.QDASH_EXECUTION

        def detail() -> dict[str, Any]:
            now = time.monotonic()
            return {
                "concurrency": worker.concurrency,
                "memory_mb": worker.memory_mb,
                "running": {uid: round(now - at, 1) for uid, at in list(worker.running.items())},
            }

        heartbeat = Heartbeat("executor", detail=detail).start()
        self.stdout.write(
            f"executor {worker.name}: {worker.concurrency} job(s) at once, "
            f"{worker.memory_mb} MB each"
        )
        try:
            with app.replace_connector(app.connector.get_worker_connector()):  # type: ignore[attr-defined]
                app.run_worker(
                    queues=[tasks.QUEUE],
                    concurrency=worker.concurrency,
                    name=worker.name,
                    update_heartbeat_interval=float(conf["HEARTBEAT_SECONDS"]),
                    stalled_worker_timeout=float(conf["STALLED_SECONDS"]),
                    delete_jobs="successful",
                    fetch_job_polling_interval=2.0,
                    install_signal_handlers=True,
                )
        finally:
            heartbeat.stop()
            worker.close()
