"""One scheduler leads; a second waits as standby until the lock is free."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from scheduler.leader import LeaderLock

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
