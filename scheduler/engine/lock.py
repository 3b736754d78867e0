"""Exactly one scheduler starts jobs at a time; the others wait as standbys.

On PostgreSQL the leader holds a session-level advisory lock on a connection of
its own: if the leader dies, its connection drops, the lock is released and a
standby takes over. On SQLite (one machine) an exclusive lock on a file named
after the database, in the temp directory, plays that part.

Each step also takes a transaction-level lock (`step_lock`), so two processes that
both believe they lead never write at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import psycopg
from django.db import connection, connections

from scheduler.pg import connect

STEP_KEY = 0x71DA5  # PostgreSQL advisory lock held by each step's transaction
LEADER_KEY = 0x71DA51  # distinct from the per-step transaction lock


def step_lock() -> None:
    """Hold the step lock until the current transaction ends."""
    # SQLite transactions are IMMEDIATE (settings), which serialises writers already.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [STEP_KEY])


class LeaderLock:
    """Try to become the scheduler leader; keep the lock until `release()`."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self.settings: dict[str, Any] = connections[alias].settings_dict
        self.vendor = connections[alias].vendor
        self._conn: psycopg.Connection[Any] | None = None
        self._file: IO[str] | None = None
        self._guard = threading.Lock()  # `_conn` and `_waiting`, between the loop and a watcher
        self._watcher: threading.Thread | None = None
        self._waiting: psycopg.Connection[Any] | None = None  # the watcher's blocked connection
        self._released = False

    def acquire(self) -> bool:
        """True when this process is (still) the leader."""
        if self.vendor == "postgresql":
            return self._acquire_pg()
        return self._acquire_file()

    def _acquire_pg(self) -> bool:
        if self._conn is not None:
            try:
                self._conn.execute("SELECT 1")
                return True
            except psycopg.Error:  # the connection dropped: so did the lock
                self._conn = None
        if self._watcher is not None and self._watcher.is_alive():
            return False  # the watcher waits in the lock's queue: it says when it holds it
        conn = connect(application_name="qdash-scheduler-lock", alias=self.alias)
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", [LEADER_KEY]).fetchone()
        if row and row[0]:
            self._conn = conn
            return True
        conn.close()
        return False

    def _acquire_file(self) -> bool:
        if self._file is not None:
            return True
        name = str(self.settings["NAME"])
        if not name.startswith("file:") and name != ":memory:":
            name = str(Path(name).resolve())
        digest = hashlib.sha1(name.encode()).hexdigest()[:16]
        handle = (Path(tempfile.gettempdir()) / f"qdash-{digest}.scheduler.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return True

    def watch(self, on_held: Callable[[], object]) -> None:
        """PostgreSQL: wait in the lock's queue in a thread of its own and call `on_held`
        the moment this process holds it, so a standby takes over as soon as the leader's
        connection drops rather than at its next try. Once at a time; SQLite: nothing."""
        if self.vendor != "postgresql" or self._conn is not None:
            return
        if self._watcher is not None and self._watcher.is_alive():
            return
        self._released = False
        self._watcher = threading.Thread(
            target=self._watch, args=(on_held,), name="leader-lock-watch", daemon=True
        )
        self._watcher.start()

    def _watch(self, on_held: Callable[[], object]) -> None:
        try:
            conn = connect(application_name="qdash-scheduler-lock", alias=self.alias)
        except psycopg.Error:
            return  # the database is away: the loop's tries go on
        with self._guard:
            if self._released:
                conn.close()
                return
            self._waiting = conn
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", [LEADER_KEY])
        except psycopg.Error:  # cancelled by `release`, or the connection dropped
            with contextlib.suppress(psycopg.Error):
                conn.close()
            return
        finally:
            with self._guard:
                self._waiting = None
        with self._guard:
            if self._released or self._conn is not None:
                conn.close()
                return
            self._conn = conn
        on_held()

    def release(self) -> None:
        with self._guard:
            self._released = True
            waiting = self._waiting
        if waiting is not None:
            with contextlib.suppress(psycopg.Error):
                waiting.cancel()
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
        if self._file is not None:
            self._file.close()
            self._file = None
