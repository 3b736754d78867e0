"""Writes that the admin, the API and the views share.

State changes of backends, jobs and sessions are inputs for the scheduler leader
(`scheduler.inputs`), so they follow the rules, land in the event log and never
race the scheduler. Each function reads the time from the clock it is given
(wall-clock time by default).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q

from scheduler import audit, inputs, models, wakeup
from scheduler.allocations import allocation_of, change_detail
from scheduler.clock import Clock, SystemClock, span_ticks, to_ticks
from scheduler.policy import model as m

__all__ = [
    "allocations_remove",
    "allocations_set",
    "allocations_validate",
    "backends_changed",
    "backends_set_status",
    "instances_ensure",
    "jobs_cancel",
    "reservations_bound_warning",
    "reservation_window",
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


def instances_ensure(*, path: str) -> models.Instance:
    """The instance-tree node at `path`, created with its ancestors if missing."""
    parent = None
    node = None
    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        node, _ = models.Instance.objects.get_or_create(
            path="/".join(parts[:depth]), defaults={"parent": parent}
        )
        parent = node
    assert node is not None
    return node


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


# An operator's change carries what it set and what it replaced (`before`), so the
# leader applies the value of that instant, and a leader that loads while the change
# waits starts from the state before it (`engine.load`).
def backends_changed(
    *, backend: models.Backend, before: timedelta | None | bool = False, clock: Clock | None = None
) -> None:
    """A backend was added, or its runtime limit changed (from `before`; False: added
    or not known): the leader reads it again."""
    detail: dict[str, Any] = {"max_runtime": span_ticks(backend.max_runtime)}
    if not isinstance(before, bool):
        detail["before"] = span_ticks(before)
    _send(Kind.BACKEND, clock, wait=False, target=backend.name, **detail)


def reservation_window(row: models.Reservation | None) -> dict[str, Any] | None:
    """A reservation as an input carries it (ticks), with the leader's started and
    ended flags; None for none."""
    if row is None:
        return None
    return {
        "backend": row.backend.name,
        "instance": row.instance.path,
        "start": to_ticks(row.start),
        "end": to_ticks(row.end),
        "exclusive": row.exclusive,
        "started": row.started,
        "ended": row.ended,
    }


def reservations_changed(
    *,
    reservation_id: int,
    before: dict[str, Any] | None = None,
    clock: Clock | None = None,
) -> None:
    """A reservation was added (`before` None), changed or deleted: the leader applies
    the window the row holds now (none, when deleted). `before`: `reservation_window`
    of the row before the change."""
    row = models.Reservation.objects.filter(pk=reservation_id).select_related("backend", "instance")
    after = reservation_window(row.first())
    _send(Kind.RESERVATION, clock, target=str(reservation_id), after=after, before=before)


def shares_changed(*, path: str, before: float | None = None, clock: Clock | None = None) -> None:
    """An instance's share changed (from `before`; None: not known): the fair-share
    lane uses the new one from now on."""
    share = models.Instance.objects.filter(path=path).values_list("share", flat=True).first()
    detail: dict[str, Any] = {"share": 1.0 if share is None else share}
    if before is not None:
        detail["before"] = before
    _send(Kind.SHARE, clock, wait=False, target=path, **detail)


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


# ------------------------------------------------------------------ allocations
def allocations_validate(
    *,
    path: str,
    seconds: float | None,
    enforce: str = m.QUEUE,
    period_start: datetime | None = None,
    period_length: timedelta | None = None,
) -> models.Instance:
    """The node an allocation may be set on, or ValidationError naming the field: a
    node that does not exist, seconds that are missing, negative or not finite, an
    unknown mode, a period start without a length (or the reverse) or a length that
    is not positive."""
    node = models.Instance.objects.filter(path=path).first()
    if node is None:
        raise ValidationError(
            {"instance": f"No instance-tree node {path!r} (hub, hub/group or hub/group/project)."},
            code="unknown_node",
        )
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        raise ValidationError(
            {"seconds": "The allocation must be a number of seconds, 0 or more."},
            code="bad_seconds",
        )
    if enforce not in m.ENFORCE_MODES:
        raise ValidationError(
            {"enforce": f"Unknown mode {enforce!r}: use {', '.join(m.ENFORCE_MODES)}."},
            code="bad_enforce",
        )
    if period_start is not None and period_length is None:
        raise ValidationError(
            {"period_length": "A fixed period needs a length."}, code="period_length"
        )
    if period_length is not None and period_start is None:
        raise ValidationError(
            {"period_start": "A period length needs the start of the first period."},
            code="period_start",
        )
    if period_length is not None and period_length <= timedelta(0):
        raise ValidationError(
            {"period_length": "A period's length must be positive."}, code="period_length"
        )
    return node


def allocations_set(
    *,
    path: str,
    seconds: float,
    enforce: str = m.QUEUE,
    period_start: datetime | None = None,
    period_length: timedelta | None = None,
    clock: Clock | None = None,
    actor: Any = None,
    via: str | None = None,
) -> models.Allocation:
    """Give the node at `path` an allocation, replacing any (docs/rules.md, "Allocations").

    The row, the leader's input and the audit entry are written in one transaction;
    bad input raises ValidationError and changes nothing. `actor` is the operator
    (a user), `via` says where a change without one came from (a command).
    """
    node = allocations_validate(
        path=path,
        seconds=seconds,
        enforce=enforce,
        period_start=period_start,
        period_length=period_length,
    )
    at = _now(clock)
    with transaction.atomic():
        row = models.Allocation.objects.select_for_update().filter(instance=node).first()
        before = _allocation_fields(row)
        previous = None if row is None else change_detail(allocation_of(row))
        if row is None:
            row = models.Allocation(instance=node)
        row.seconds = float(seconds)
        row.enforce = enforce
        row.period_start = period_start
        row.period_length = period_length
        row.save()
        inputs.record(
            Kind.ALLOCATION,
            at=at,
            target=node.path,
            **change_detail(allocation_of(row)),
            before=previous,
        )
        audit.record(
            actor=actor,
            target=node,
            action="set allocation",
            before=before,
            after=_allocation_fields(row),
            via=via,
        )
    wakeup.wake(at=at)
    return row


def allocations_remove(
    *, path: str, clock: Clock | None = None, actor: Any = None, via: str | None = None
) -> bool:
    """Remove the allocation of the node at `path`; False (and no change) if it has none."""
    at = _now(clock)
    with transaction.atomic():
        row = (
            models.Allocation.objects.select_for_update()
            .filter(instance__path=path)
            .select_related("instance")
            .first()
        )
        if row is None:
            return False
        before = _allocation_fields(row)
        previous = change_detail(allocation_of(row))
        row.delete()
        inputs.record(Kind.ALLOCATION, at=at, target=path, **change_detail(None), before=previous)
        audit.record(
            actor=actor,
            target=row.instance,
            action="remove allocation",
            before=before,
            after={},
            via=via,
        )
    wakeup.wake(at=at)
    return True


def _allocation_fields(row: models.Allocation | None) -> dict[str, Any]:
    if row is None:
        return {}
    return {
        "seconds": f"{row.seconds:g}",
        "enforce": row.enforce,
        "period_start": row.period_start.isoformat() if row.period_start else None,
        "period_length": row.period_length.total_seconds() if row.period_length else None,
    }
