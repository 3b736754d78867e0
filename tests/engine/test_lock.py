"""One scheduler leads; a second waits as standby until the lock is free."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from scheduler.engine.lock import LeaderLock

pytestmark = pytest.mark.django_db


def test_it_lets_one_scheduler_lead_and_the_other_wait() -> None:
    leader, standby = LeaderLock(), LeaderLock()

    assert leader.acquire()
    assert not standby.acquire()
    assert leader.acquire()  # still the leader on the next tick

    leader.release()

    assert standby.acquire()
    standby.release()


def test_a_standby_takes_over_when_the_leader_dies() -> None:
    leader, standby = LeaderLock(), LeaderLock()
    assert leader.acquire()

    # The leader's process dies: its lock connection (or lock file) goes with it.
    if leader._conn is not None:
        pid = leader._conn.info.backend_pid
        with LeaderLockProbe() as probe:
            probe.execute("SELECT pg_terminate_backend(%s)", [pid])
    else:
        assert leader._file is not None
        leader._file.close()
        leader._file = None

    assert eventually(standby.acquire)  # the server ends the killed session asynchronously
    assert not leader.acquire()  # the old leader comes back as a standby
    standby.release()


def test_a_watching_standby_holds_the_lock_the_moment_the_leader_lets_go() -> None:
    leader, standby = LeaderLock(), LeaderLock()
    assert leader.acquire()
    assert not standby.acquire()
    held = threading.Event()

    standby.watch(held.set)  # waits in the lock's queue (PostgreSQL; SQLite: nothing)

    assert not standby.acquire() and not held.is_set()
    leader.release()
    if standby.vendor == "postgresql":
        assert held.wait(30)  # woken by the lock itself, not by its next try
        assert standby._conn is not None  # the watcher's connection holds it
        assert standby.acquire()
        assert not leader.acquire()
    else:
        assert not held.is_set() and standby.acquire()
    standby.release()
    assert leader.acquire()
    leader.release()


def test_releasing_stops_a_watcher_waiting_in_the_queue() -> None:
    leader, standby = LeaderLock(), LeaderLock()
    assert leader.acquire()
    standby.acquire()
    held = threading.Event()
    standby.watch(held.set)

    standby.release()  # the standby leaves: its watcher gives up its place
    leader.release()

    if standby._watcher is not None:
        standby._watcher.join(30)
        assert not standby._watcher.is_alive()
    assert not held.is_set() and standby._conn is None
    assert leader.acquire()  # nobody else took it
    leader.release()


def eventually(check: Callable[[], bool], attempts: int = 50) -> bool:
    for _ in range(attempts):
        if check():
            return True
        time.sleep(0.1)
    return False


class LeaderLockProbe:
    """A plain connection to the test database, for acting on other sessions."""

    def __enter__(self):  # type: ignore[no-untyped-def]
        from django.db import connection

        self.cursor = connection.cursor()
        return self.cursor

    def __exit__(self, *exc: object) -> None:
        self.cursor.close()
