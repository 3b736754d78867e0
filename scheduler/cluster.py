"""Every process of a deployment reports itself: the cluster page reads the reports.

A `Heartbeat` thread writes the process's `Process` row every
`QDASH_PROCESS_HEARTBEAT` seconds (and at once when asked: a scheduler that just
became leader), with what it is doing in `detail`. A row whose heartbeat is
older than `STALE_BEATS` intervals belongs to a process that stopped or hangs;
the leader deletes rows older than `FORGET_SECONDS`.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from scheduler import models

log = logging.getLogger(__name__)
STALE_BEATS = 3  # a row this many intervals old is shown as not responding
FORGET_SECONDS = 600  # rows of processes gone this long are deleted
STOP_SECONDS = 3.0  # a leaving process waits at most this long to remove its row


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Heartbeat:
    """Keeps this process's row fresh; `detail()` says what it is doing."""

    def __init__(
        self,
        kind: str,
        *,
        detail: Callable[[], dict[str, Any]] = dict,
        leading_since: Callable[[], datetime | None] = lambda: None,
        interval: float | None = None,
    ) -> None:
        self.kind = kind
        self.detail = detail
        self.leading_since = leading_since
        self.interval = interval or settings.QDASH_PROCESS_HEARTBEAT
        self.name = process_name()
        self.started_at = timezone.now()
        self._stop = threading.Event()
        self._now = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def beat_soon(self) -> None:
        """Write the row now rather than at the next interval."""
        self._now.set()

    def stop(self) -> None:
        """Stop beating and remove the row: the process is leaving cleanly. At most
        `STOP_SECONDS` are spent on the row: a process that is exiting must not wait on
        a database lock (SQLite waits up to 20 s); a row left behind goes stale and the
        leader forgets it."""
        self._stop.set()
        self._now.set()
        self._thread.join(timeout=5)
        remover = threading.Thread(target=self._remove_row, name="heartbeat-stop", daemon=True)
        remover.start()
        remover.join(timeout=STOP_SECONDS)

    def _remove_row(self) -> None:
        try:
            models.Process.objects.filter(name=self.name).delete()
        except Exception:  # noqa: BLE001 - the database may be gone already
            log.debug("process row not removed", exc_info=True)
        finally:
            close_old_connections()

    def beat(self) -> None:
        models.Process.objects.update_or_create(
            name=self.name,
            defaults={
                "kind": self.kind,
                "heartbeat_at": timezone.now(),
                "leading_since": self.leading_since(),
                "detail": self.detail(),
            },
            create_defaults={
                "kind": self.kind,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started_at": self.started_at,
                "heartbeat_at": timezone.now(),
                "leading_since": self.leading_since(),
                "detail": self.detail(),
            },
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.beat()
            except Exception as error:  # noqa: BLE001 - the next beat tries again
                log.warning("heartbeat not written: %s", error)
            finally:
                close_old_connections()
            self._now.wait(self.interval)
            self._now.clear()


def forget_gone() -> int:
    """Delete the rows of processes silent for FORGET_SECONDS (the leader calls it)."""
    limit = timezone.now() - timedelta(seconds=FORGET_SECONDS)
    deleted, _ = models.Process.objects.filter(heartbeat_at__lt=limit).delete()
    return deleted


def is_stale(row: models.Process, now: datetime) -> bool:
    interval = settings.QDASH_PROCESS_HEARTBEAT
    return (now - row.heartbeat_at).total_seconds() > STALE_BEATS * interval


def web_heartbeat(kind: str = models.Process.Kind.WEB) -> Heartbeat:
    """A web process's heartbeat, with the websockets it serves."""
    from scheduler.consumers.dashboard import DashboardConsumer

    heartbeat = Heartbeat(kind, detail=lambda: {"websockets": DashboardConsumer.open_count})
    atexit.register(heartbeat.stop)  # a clean exit removes the row
    return heartbeat.start()
