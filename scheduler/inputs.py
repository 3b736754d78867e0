"""Durable inputs: what a web process commits for the scheduler leader to apply.

Web processes never load the queue or run the rules. They store the change
(with the job or session it creates) and its `Input` row in one short
transaction, then wake the leader (`scheduler.wakeup`). The leader applies
inputs in the order they were committed; a lost wake-up only delays them until
its next timed tick.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models.sql import InsertQuery

from scheduler import models

Kind = models.Input.Kind
POLL = 0.005  # seconds between looks while waiting for the leader


def record(
    kind: str,
    *,
    at: datetime,
    job: models.Job | None = None,
    session: models.Session | None = None,
    target: str = "",
    **detail: Any,
) -> models.Input:
    """Store one input (inside the caller's transaction, with the rows it names).

    `session` is set only on inputs that create it (a new session, or the first
    job of a `start_session` submission); inputs about an existing session name
    it in `target`.
    """
    return models.Input.objects.create(
        kind=kind, at=at, job=job, session=session, target=target, detail=detail
    )


def wait_applied(inputs: Iterable[models.Input], timeout: float | None = None) -> bool:
    """Wait (at most `timeout` seconds, `QDASH_APPLY_WAIT` by default) until the leader
    applied `inputs`.

    For answers that show the change at once (a cancelled job, a closed session).
    False when the leader did not get to them in time: they stay queued and apply
    when it does.
    """
    ids = [row.pk for row in inputs]
    if timeout is None:
        timeout = float(getattr(settings, "QDASH_APPLY_WAIT", 2.0))
    deadline = time.monotonic() + timeout
    while models.Input.objects.filter(pk__in=ids).exists():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)
    return True


def submit_in_one_statement(job: models.Job, *, at: datetime, notify: str) -> models.Input:
    """Store `job` (unsaved) with its `submit` input and the leader's wake-up
    (`pg_notify(notify)`) in one statement: PostgreSQL only.

    The statement is its own transaction, so the job and its input commit together
    or not at all, and the wake-up is delivered at that commit, as `NOTIFY` is. It
    saves the round trips of `BEGIN`, a second `INSERT`, `COMMIT` and `NOTIFY`.
    """
    job_sql, job_params = _insert_sql(job)
    fields = {f.name: f for f in models.Input._meta.local_concrete_fields}
    input_params = [
        Kind.SUBMIT,
        fields["at"].get_db_prep_save(at, connection),
        "",
        fields["detail"].get_db_prep_save({}, connection),
    ]
    table = connection.ops.quote_name(models.Input._meta.db_table)
    statement = (
        f"WITH j AS ({job_sql}), "
        f"i AS (INSERT INTO {table} (kind, at, job_id, session_id, target, detail) "
        "SELECT %s, %s, j.id, NULL, %s, %s FROM j RETURNING id) "
        "SELECT j.id, i.id, pg_notify(%s, '') FROM j, i"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [*job_params, *input_params, notify])
        job_id, input_id, _ = cursor.fetchone()
    job.pk = job_id
    job._state.adding, job._state.db = False, connection.alias
    row = models.Input(pk=input_id, kind=Kind.SUBMIT, at=at, job=job, target="", detail={})
    row._state.adding, row._state.db = False, connection.alias
    return row


def _insert_sql(obj: models.Job) -> tuple[str, list[Any]]:
    """Django's own `INSERT ... RETURNING id` for `obj`, as `Model.save` would send it."""
    meta = obj._meta
    fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field and not f.generated]
    query = InsertQuery(type(obj))
    query.insert_values(fields, [obj], raw=False)
    compiler = query.get_compiler(connection=connection)
    compiler.returning_fields = [meta.pk]
    ((sql, params),) = compiler.as_sql()
    return sql, list(params)
