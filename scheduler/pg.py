"""Connections of their own to PostgreSQL, outside Django's pool: for session-level
advisory locks (the leader's, a job's execution lock) and for LISTEN."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from django.db import connections

log = logging.getLogger(__name__)


def connect(*, application_name: str, alias: str = "default") -> psycopg.Connection[Any]:
    """An autocommit connection to the database of `alias`, named in pg_stat_activity."""
    s = connections[alias].settings_dict
    return psycopg.connect(
        dbname=s["NAME"],
        user=s.get("USER") or None,
        password=s.get("PASSWORD") or None,
        host=s.get("HOST") or None,
        port=s.get("PORT") or None,
        autocommit=True,
        application_name=application_name,
        connect_timeout=5,
    )


def alive(conn: psycopg.Connection[Any]) -> bool:
    try:
        conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


class Listener:
    """Calls `on_notify()` (in its own thread) for every NOTIFY on `channel`, and once
    after each (re)connection, since notifications sent meanwhile are lost."""

    def __init__(
        self, channel: str, on_notify: Callable[[], None], *, application_name: str
    ) -> None:
        self.channel = channel
        self.on_notify = on_notify
        self.application_name = application_name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"listen-{channel}", daemon=True)
        self.connected = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(application_name=self.application_name) as conn:
                    conn.execute(f"LISTEN {self.channel}")
                    self.connected.set()
                    self.on_notify()
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5):
                            self.on_notify()
            except psycopg.Error as error:
                self.connected.clear()
                log.warning("LISTEN %s: %s; reconnecting", self.channel, error)
                self._stop.wait(1.0)
