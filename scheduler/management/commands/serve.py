"""`manage.py serve`: the web server, the scheduler and the executor in one process."""

from __future__ import annotations

import asyncio
import atexit
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
            help="take the client's address from X-Forwarded-For, as behind a proxy "
            "(the default when QDASH_BEHIND_PROXY is on)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # daphne installs Twisted's asyncio reactor on import: import it first.
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        from qdash.asgi import application
        from scheduler import models
        from scheduler.cluster import Heartbeat, web_heartbeat
        from scheduler.consumers import DashboardConsumer
        from scheduler.demo import Traffic, demo_load, traffic_loop
        from scheduler.leader import LeaderLock
        from scheduler.runner import Scheduler, freeze_startup_heap, scheduler_loop

        call_command("migrate", interactive=False, verbosity=0)
        if options["demo"]:
            demo_load()
        freeze_startup_heap()
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
                loop = scheduler_loop(scheduler, lock=LeaderLock(), heartbeat=heartbeat)
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
            **_proxy_headers(options["proxy_headers"] or settings.QDASH_BEHIND_PROXY),
        ).run()
        for task in tasks:
            task.cancel()


def _proxy_headers(behind_proxy: bool) -> dict[str, str]:
    """daphne's options for `--proxy-headers`: the client's address, port and scheme from
    the proxy's headers, so rate limits, lock-outs and `/metrics` see the client."""
    if not behind_proxy:
        return {}
    return {
        "proxy_forwarded_address_header": "X-Forwarded-For",
        "proxy_forwarded_port_header": "X-Forwarded-Port",
        "proxy_forwarded_proto_header": "X-Forwarded-Proto",
    }


async def _wake_remote_scheduler() -> None:
    from channels.layers import get_channel_layer

    from scheduler.wakeup import CHANNEL

    layer = get_channel_layer()
    if layer is not None:
        await layer.send(CHANNEL, {"type": "scheduler.wake"})
