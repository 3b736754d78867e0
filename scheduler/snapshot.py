"""One consistent view of the database for a reader that runs many queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection, transaction


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
