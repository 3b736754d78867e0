"""Writes that the admin, the API and the views share.

State changes of backends, jobs and sessions are inputs for the scheduler leader
(`scheduler.inputs`), so they follow the rules, land in the event log and never
race the scheduler. Each function reads the time from the clock it is given
(wall-clock time by default).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from scheduler import audit, inputs, models, wakeup
from scheduler.clock import Clock, SystemClock
from scheduler.engine import instances_ensure
from scheduler.policy import model as m

__all__ = [
    "backends_changed",
    "backends_set_status",
    "instances_ensure",
    "jobs_cancel",
    "reservations_bound_warning",
    "reservations_changed",
    "reservations_validate",
    "sessions_cancel",
    "sessions_close",
    "shares_changed",
]

Kind = models.Input.Kind


def _now(clock: Clock | None) -> datetime:
    return (clock or SystemClock()).now()


def _send(kind: str, clock: Clock | None, *, wait: bool = True, **fields: Any) -> None:
    """Commit one input and wake the leader; with `wait`, give it a moment to apply it,
    so the answer shows the change (it applies later if the leader is busy or away)."""
    at = _now(clock)
    with transaction.atomic():
        row = inputs.record(kind, at=at, **fields)
    wakeup.wake(at=at)
    if wait:
        inputs.wait_applied([row])


def backends_set_status(
    *, backend: models.Backend, status: str, clock: Clock | None = None, actor: Any = None
) -> models.Backend:
    """Pause or resume `backend`; a paused backend starts nothing, its running job finishes."""
    if status not in models.Backend.Status.values:
        raise ValueError(f"unknown backend status {status!r}")
    before = backend.status
    _send(Kind.BACKEND_STATUS, clock, target=backend.name, status=status)
    audit.record(
        actor=actor,
        target=backend,
        action="pause" if status == models.Backend.Status.PAUSED else "resume",
        before={"status": before},
        after={"status": status},
    )
    backend.refresh_from_db()
    return backend


def backends_changed(*, backend: models.Backend, clock: Clock | None = None) -> None:
    """A backend was added, or its runtime limit changed: the leader reads it again."""
    _send(Kind.BACKEND, clock, wait=False, target=backend.name)


def reservations_changed(*, reservation_id: int, clock: Clock | None = None) -> None:
    """A reservation was added, changed or deleted: the leader reads it again."""
    _send(Kind.RESERVATION, clock, target=str(reservation_id))


def shares_changed(*, path: str, clock: Clock | None = None) -> None:
    """An instance's share changed: the fair-share lane uses the new one from now on."""
    _send(Kind.SHARE, clock, wait=False, target=path)


def jobs_cancel(*, job: models.Job, clock: Clock | None = None, actor: Any = None) -> models.Job:
    """Cancel a queued or running job; a job in a final state stays as it is.

    An operator cancelling someone else's job is recorded in the audit log.
    """
    before = job.status
    _send(Kind.CANCEL_JOB, clock, job=job)
    job.refresh_from_db()
    if _for_someone_else(actor, job.owner_id):
        audit.record(
            actor=actor,
            target=job,
            action="cancel job",
            before={"status": before},
            after={"status": job.status},
        )
    return job


def sessions_close(
    *, session: models.Session, clock: Clock | None = None, actor: Any = None
) -> models.Session:
    """Stop accepting jobs; the session closes once nothing of it is queued or running."""
    return _session_action(Kind.CLOSE_SESSION, "close session", session, clock, actor)


def sessions_cancel(
    *, session: models.Session, clock: Clock | None = None, actor: Any = None
) -> models.Session:
    """Close the session at once and cancel its queued jobs; a running job finishes."""
    return _session_action(Kind.CANCEL_SESSION, "cancel session", session, clock, actor)


def _session_action(
    kind: str, name: str, session: models.Session, clock: Clock | None, actor: Any
) -> models.Session:
    before = {"state": session.state, "accepting_jobs": session.accepting_jobs}
    _send(kind, clock, target=session.uid)
    session.refresh_from_db()
    if _for_someone_else(actor, session.owner_id):
        after = {"state": session.state, "accepting_jobs": session.accepting_jobs}
        audit.record(actor=actor, target=session, action=name, before=before, after=after)
    return session


def _for_someone_else(actor: Any, owner_id: int | None) -> bool:
    return getattr(actor, "is_authenticated", False) and actor.pk != owner_id


def reservations_validate(*, reservation: models.Reservation) -> None:
    """Refuse a window that does not end after it starts or overlaps another on its backend.

    Windows are half-open, `[start, end)`: one may begin where another ends.
    """
    if reservation.end <= reservation.start:
        raise ValidationError({"end": "The window must end after it starts."}, code="empty")
    others = models.Reservation.objects.filter(
        backend_id=reservation.backend_id, start__lt=reservation.end, end__gt=reservation.start
    ).select_related("backend", "instance")
    if reservation.pk is not None:
        others = others.exclude(pk=reservation.pk)
    other = others.order_by("start").first()
    if other is not None:
        raise ValidationError(
            "The window overlaps the reservation of %(instance)s on %(backend)s "
            "from %(start)s to %(end)s.",
            code="overlap",
            params={
                "instance": other.instance.path,
                "backend": other.backend.name,
                "start": f"{other.start:%Y-%m-%d %H:%M:%S %Z}",
                "end": f"{other.end:%Y-%m-%d %H:%M:%S %Z}",
            },
        )


def reservations_bound_warning(*, reservation: models.Reservation, now: datetime) -> str | None:
    """A warning when sessions of the reserving instance may be bound to the window.

    A session activated or re-activated on the backend inside the window is bound
    to it and closes when the window ends, failing its queued jobs. Any session
    of the instance on the backend that is not closed and can outlive the
    window's start may still (re-)activate inside it.
    """
    if reservation.end <= now:
        return None
    sessions = list(
        models.Session.objects.filter(
            Q(ttl_deadline__isnull=True) | Q(ttl_deadline__gt=reservation.start),
            backend_id=reservation.backend_id,
            instance_id=reservation.instance_id,
        )
        .exclude(state=models.Session.State.CLOSED)
        .order_by("created_at", "id")
        .values_list("uid", "state")
    )
    if not sessions:
        return None
    shown = ", ".join(f"{uid} ({state})" for uid, state in sessions[:5])
    more = f" and {len(sessions) - 5} more" if len(sessions) > 5 else ""
    return (
        f"Sessions of {reservation.instance.path} on {reservation.backend.name} are live: "
        f"{shown}{more}. A session activated inside the window is bound to it: when the "
        f"window ends it closes and its queued jobs fail with {m.RESERVATION_ENDED}."
    )
