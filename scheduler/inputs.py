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
