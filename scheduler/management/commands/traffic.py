"""`manage.py traffic`: the demo traffic as a process of its own (`make cluster`)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from django.core.management.base import BaseCommand

from scheduler.demo import Traffic, traffic_loop


class Command(BaseCommand):
    help = "Submit, cancel and close like a few researchers would, as the demo account."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write("demo traffic started")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(traffic_loop(Traffic()))
