"""Make proposed changes for real, through the services the admin uses.

Each change is written as the admin writes it (the row, then the service that
tells the scheduler leader), so it follows the rules and lands in the event log
exactly as an edit in the admin would. A synthetic load is an assumption about
arrivals, not a change: it is never applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from scheduler import models, services
from scheduler.clock import Clock, SystemClock, from_ticks, ticks_seconds, ticks_span
from scheduler.policy import model as m
from scheduler.whatif.changes import Proposed

# The model permission each kind of change needs, as in the admin.
PERMISSIONS = {
    "reservation": "scheduler.add_reservation",
    "move": "scheduler.change_reservation",
    "delete": "scheduler.delete_reservation",
    "share": "scheduler.change_instance",
    "allocation": "scheduler.change_allocation",
    "pause": "scheduler.change_backend",
    "resume": "scheduler.change_backend",
    "overhead": "scheduler.change_backend",
}


def missing_permissions(*, user: object, changes: Sequence[Proposed]) -> list[str]:
    """The permissions `user` lacks for the applicable `changes`."""
    needed = {PERMISSIONS[p.kind] for p in changes if p.applicable}
    has_perm = getattr(user, "has_perm", None)
    return sorted(perm for perm in needed if has_perm is None or not has_perm(perm))


def whatif_apply(
    *, changes: Sequence[Proposed], clock: Clock | None = None, actor: Any = None
) -> list[str]:
    """Apply the applicable `changes` in order; returns the admin's warnings (bound sessions).

    The changes must be freshly parsed (`changes.parse_all` at this moment), so the
    windows were checked against the reservations as they are now.
    """
    clock = clock or SystemClock()
    warnings = []
    for proposed in changes:
        if not proposed.applicable:
            continue
        warning = _apply(proposed, clock, actor)
        if warning:
            warnings.append(warning)
    return warnings


def _apply(p: Proposed, clock: Clock, actor: Any) -> str | None:
    if p.kind in ("reservation", "move"):
        row = p.reservation
        assert row is not None
        services.reservations_validate(reservation=row)
        before = None
        if p.kind == "move":
            before = services.reservation_window(
                models.Reservation.objects.select_related("backend", "instance").get(pk=row.pk)
            )
            row.save(
                update_fields=["end", "exclusive"] if row.started else ["start", "end", "exclusive"]
            )
        else:
            row.save()
        services.reservations_changed(reservation_id=row.pk, before=before, clock=clock)
        return services.reservations_bound_warning(reservation=row, now=clock.now())
    if p.kind == "delete":
        assert p.reservation is not None
        pk, before = p.reservation.pk, services.reservation_window(p.reservation)
        p.reservation.delete()
        services.reservations_changed(reservation_id=pk, before=before, clock=clock)
    elif p.kind == "share":
        assert p.instance is not None and p.value is not None
        before_share = p.instance.share
        p.instance.share = p.value
        p.instance.save(update_fields=["share"])
        services.shares_changed(path=p.instance.path, before=before_share, clock=clock)
    elif p.kind == "allocation":
        _apply_allocation(p, clock, actor)
    elif p.kind in ("pause", "resume"):
        assert p.backend is not None
        status = m.PAUSED if p.kind == "pause" else m.ONLINE
        services.backends_set_status(backend=p.backend, status=status, clock=clock, actor=actor)
    elif p.kind == "overhead":
        assert p.backend is not None and p.value is not None
        p.backend.job_overhead = timedelta(seconds=p.value)
        p.backend.save(update_fields=["job_overhead"])
        services.backends_changed(backend=p.backend, before=p.backend.max_runtime, clock=clock)
    return None


def _apply_allocation(p: Proposed, clock: Clock, actor: Any) -> None:
    change = p.change
    assert isinstance(change, m.PutAllocation)
    if change.amount is None:
        services.allocations_remove(path=change.node, clock=clock, actor=actor)
        return
    period = change.period
    services.allocations_set(
        path=change.node,
        seconds=ticks_seconds(change.amount),
        enforce=change.enforce,
        period_start=None if period is None else from_ticks(period.start),
        period_length=None if period is None else ticks_span(period.length),
        clock=clock,
        actor=actor,
    )
