"""One consistent view of the database for a reader that runs many queries, and the
live state read in it as a new leader would load it (the what-if's starting point).

Readers outside the scheduler's process load the state here, never from the
running leader's memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from django.db import connection, transaction

from scheduler import models
from scheduler.clock import span_ticks, to_ticks
from scheduler.engine.load import load
from scheduler.policy import Policy
from scheduler.rule_settings import deployment_settings


@contextmanager
def read_snapshot() -> Iterator[None]:
    """Every query inside sees one state of the database: a read-only repeatable-read
    transaction on PostgreSQL (it never waits for the leader), a transaction on SQLite
    (which sees one state already). Inside a transaction already open, that
    transaction's view is the one read."""
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def live_state(now: datetime, *, since: int | None = None) -> tuple[Policy, dict[str, int]]:
    """The live state at `now` as the leader would load it, and each backend's overhead
    in ticks, read in one snapshot; `since`: with the usage charges since that instant
    one by one (what a proposed allocation counts)."""
    with read_snapshot():
        policy = load(deployment_settings(), to_ticks(now), since=since).policy
        overheads = {
            name: span_ticks(overhead) or 0
            for name, overhead in models.Backend.objects.values_list("name", "job_overhead")
        }
    return policy, overheads
