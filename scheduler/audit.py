"""The audit log of operators' actions: who did what, when, with the values before and after.

Model changes made in the admin (reservations, instances' shares and members,
backends' settings, API keys) are recorded by django-auditlog, which knows the
request's user. Actions that change no row themselves (pausing a backend,
cancelling someone else's job or session: the scheduler applies them) are
recorded here, through the same log, so one admin page shows them all.
"""

from __future__ import annotations

from typing import Any

from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.db import models as db

from scheduler import models


def register() -> None:
    """Log every change of these models (AppConfig.ready)."""
    if auditlog.contains(models.Reservation):
        return
    auditlog.register(
        models.Reservation,
        include_fields=["backend", "instance", "start", "end", "exclusive", "note"],
    )
    auditlog.register(
        models.Instance, include_fields=["path", "parent", "share"], m2m_fields={"members"}
    )
    auditlog.register(  # what an operator sets; status and holds change by the scheduler
        models.Backend,
        include_fields=[
            "name",
            "num_qubits",
            "max_runtime",
            "job_overhead",
            "shot_time",
            "description",
        ],
    )
    auditlog.register(models.ApiToken, include_fields=["user", "name", "created"])


def record(
    *,
    actor: Any,
    target: db.Model,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
    via: str | None = None,
) -> LogEntry | None:
    """One service action on `target` by `actor` (a user, or None for the system);
    `via` names where an action without a user came from (a command and who ran it)."""
    user = actor if getattr(actor, "is_authenticated", False) else None
    changes = {
        key: [_text(before.get(key)), _text(after.get(key))]
        for key in dict.fromkeys([*before, *after])
        if before.get(key) != after.get(key)
    }
    return LogEntry.objects.log_create(
        target,
        force_log=True,
        action=LogEntry.Action.UPDATE,
        changes=changes,
        actor=user,
        additional_data={"action": action} | ({"via": via} if via else {}),
    )


def _text(value: Any) -> str:
    return "None" if value is None else str(value)
