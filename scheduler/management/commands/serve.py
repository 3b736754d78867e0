"""`manage.py serve`: the web server, the scheduler and the executor in one process."""

from __future__ import annotations

import asyncio
import atexit
import threading
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Serve qdash (HTTP + websockets) with the scheduler and executor in this process."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--demo", action="store_true", help="load demo data and run demo traffic"
        )
        parser.add_argument(
            "--no-scheduler",
            action="store_true",
            help="web only (the scheduler runs elsewhere: manage.py scheduler)",
        )
        parser.add_argument("--workers", type=int, default=2, help="executor threads")
        parser.add_argument(
            "--proxy-headers",
            action="store_true",
            help="take the client's address and scheme from a trusted proxy's X-Forwarded-For "
            "and X-Forwarded-Proto (QDASH_TRUSTED_PROXIES; as QDASH_BEHIND_PROXY=1)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # daphne installs Twisted's asyncio reactor on import: import it first.
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        from qdash.asgi import application
        from scheduler import limits, models
        from scheduler.cluster import Heartbeat, web_heartbeat
        from scheduler.consumers.dashboard import DashboardConsumer
        from scheduler.demo import Traffic, demo_load, traffic_loop
        from scheduler.devices.status import backends_check_all
        from scheduler.engine.lock import LeaderLock
        from scheduler.engine.loop import Scheduler
        from scheduler.heap import freeze_startup_heap

        if options["proxy_headers"]:  # read by qdash.proxy on every request
            settings.QDASH_BEHIND_PROXY = True
            settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
        call_command("migrate", interactive=False, verbosity=0)
        if options["demo"]:
            demo_load()
        backends_check_all()  # a driver that does not load takes its backend offline
        freeze_startup_heap()
        # The decoding workers start beside the server rather than in the first
        # submission, which would wait for them (one to two seconds) with those behind it.
        threading.Thread(target=limits.sandbox().start, name="decode-start", daemon=True).start()
        tasks: list[asyncio.Future[None]] = []

        def ready() -> None:
            if options["no_scheduler"]:  # start (or nudge) a `runworker scheduler-wake` worker
                web_heartbeat()
                tasks.append(asyncio.ensure_future(_wake_remote_scheduler()))
            else:
                scheduler = Scheduler(workers=options["workers"])

                def detail() -> dict[str, Any]:
                    return {**scheduler.detail(), "websockets": DashboardConsumer.open_count}

                heartbeat = Heartbeat(
                    models.Process.Kind.EMBEDDED,
                    detail=detail,
                    leading_since=lambda: scheduler.leading_since,
                )
                atexit.register(heartbeat.stop)
                heartbeat.start()
                loop = scheduler.run(lock=LeaderLock(), heartbeat=heartbeat)
                tasks.append(asyncio.ensure_future(loop))
            if options["demo"]:
                tasks.append(asyncio.ensure_future(traffic_loop(Traffic())))

        url = f"http://{options['host']}:{options['port']}/"
        self.stdout.write(f"qdash on {url}")
        if options["demo"]:
            self.stdout.write("demo logins: alice / alice (researcher), admin / admin (operator)")
        Server(
            application=application,
            endpoints=build_endpoint_description_strings(
                host=options["host"], port=options["port"]
            ),
            ready_callable=ready,
            verbosity=0,
        ).run()
        for task in tasks:
            task.cancel()


async def _wake_remote_scheduler() -> None:
    from channels.layers import get_channel_layer

    from scheduler.wakeup import CHANNEL

    layer = get_channel_layer()
    if layer is not None:
        await layer.send(CHANNEL, {"type": "scheduler.wake"})
