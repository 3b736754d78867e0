"""Exactly one scheduler starts jobs at a time; the others wait as standbys.

On PostgreSQL the leader holds a session-level advisory lock on a connection of
its own: if the leader dies, its connection drops, the lock is released and a
standby takes over. On SQLite (one machine) an exclusive lock on a file named
after the database, in the temp directory, plays that part.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO, Any

import psycopg
from django.db import connections

from scheduler.pg import connect

LEADER_KEY = 0x71DA51  # distinct from the per-step transaction lock


class LeaderLock:
    """Try to become the scheduler leader; keep the lock until `release()`."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self.settings: dict[str, Any] = connections[alias].settings_dict
        self.vendor = connections[alias].vendor
        self._conn: psycopg.Connection[Any] | None = None
        self._file: IO[str] | None = None

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

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None
        if self._file is not None:
            self._file.close()
            self._file = None
