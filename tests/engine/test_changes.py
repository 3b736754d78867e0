"""Operators' changes on the leader: allocations with the charges they count, and every
change in the event log with what it replaced, also when the leader loads while
the change waits."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from scheduler import models, services
from scheduler.clock import FakeClock, from_ticks, to_ticks
from scheduler.engine.step import Leader
from scheduler.policy import model as m
from tests.engine.test_step import SETTINGS, T0, submit
from tests.factories import BackendFactory, instance

pytestmark = pytest.mark.django_db

SECOND = 1_000_000
WINDOW = 100 * SECOND  # a short usage window, so charges leave it within a test
SHORT = replace(SETTINGS, usage_window=WINDOW)
t0 = to_ticks(T0)


@pytest.fixture
def backend() -> models.Backend:
    instance("h/g/p")
    return BackendFactory(name="sim_a")


def logged(kind: str) -> list[dict[str, Any]]:
    return list(
        models.Event.objects.filter(kind=kind).order_by("id").values_list("detail", flat=True)
    )


def test_a_fixed_period_reaching_past_what_the_leader_kept_loads_its_charges_again(
    backend: models.Backend,
) -> None:
    leader = Leader(settings=SHORT)
    leader.step(t0, [(t0, [submit("j1", seconds=50)])])
    leader.step(t0 + 300 * SECOND)  # j1's 50 s left the window at 150 and were let go
    assert leader.policy is not None and leader.policy.usage.forgotten is not None
    assert leader.policy.usage.forgotten > t0 + 50 * SECOND
    loads = leader.loads

    period = m.Period(t0, 1000 * SECOND)  # began before j1 ran: it counts j1
    fixed = m.PutAllocation(node="h/g", amount=40 * SECOND, period=period)
    report = leader.step(t0 + 310 * SECOND, [(t0 + 310 * SECOND, [fixed, submit("j2")])])

    assert leader.loads == loads + 1
    assert report.instant.started == []  # h/g consumed 50 of 40 in its period
    assert leader.policy.allocations.consumed("h/g", t0 + 310 * SECOND) == 50 * SECOND
    stored = models.Allocation.objects.get(instance__path="h/g")  # as an operator's would be
    assert (stored.seconds, stored.period_start) == (40, T0)
    assert stored.period_length == timedelta(seconds=1000)

    leader.step(t0 + 1000 * SECOND)  # the next period begins empty: j2 starts then
    assert models.Job.objects.get(uid="j2").started_at == from_ticks(t0 + 1000 * SECOND)


def test_a_new_leader_loads_an_allocation_with_the_charges_it_counts_one_by_one(
    backend: models.Backend,
) -> None:
    first = Leader(settings=SHORT)
    rolling = m.PutAllocation(node="h", amount=25 * SECOND)
    first.step(t0, [(t0, [rolling, submit("a", seconds=10), submit("b", seconds=20)])])
    first.step(t0 + 40 * SECOND, [(t0 + 40 * SECOND, [submit("c", seconds=5)])])
    assert models.Job.objects.get(uid="c").status == m.QUEUED  # 30 used of 25

    second = Leader(settings=SHORT)  # a standby takes over
    second.step(t0 + 110 * SECOND)  # a's 10 s (ended at 10) left at 110: 20 used of 25

    c = models.Job.objects.get(uid="c")
    assert c.started_at == from_ticks(t0 + 110 * SECOND)


def test_changes_made_while_the_leader_loads_are_logged_with_what_they_replaced(
    backend: models.Backend, settings: Any
) -> None:
    settings.QDASH_EAGER_LEADER = True  # each change: a leader loaded afresh applies it
    clock = FakeClock(T0)
    node = models.Instance.objects.get(path="h/g")
    window = models.Reservation.objects.create(
        backend=backend,
        instance=models.Instance.objects.get(path="h/g/p"),
        start=T0 + timedelta(hours=1),
        end=T0 + timedelta(hours=2),
    )
    services.reservations_changed(reservation_id=window.pk, clock=clock)
    before = services.reservation_window(window)
    window.exclusive = True
    window.save()
    services.reservations_changed(reservation_id=window.pk, before=before, clock=clock)
    before, pk = services.reservation_window(window), window.pk
    window.delete()
    services.reservations_changed(reservation_id=pk, before=before, clock=clock)
    node.share = 3
    node.save()
    services.shares_changed(path="h/g", before=1.0, clock=clock)
    backend.max_runtime = timedelta(minutes=5)
    backend.save()
    services.backends_changed(backend=backend, before=None, clock=clock)
    services.allocations_set(path="h/g", seconds=60, clock=clock)
    services.allocations_remove(path="h/g", clock=clock)

    changed = logged("reservation_changed")
    assert [(c["exclusive"], c["before"] and c["before"]["exclusive"]) for c in changed] == [
        (False, None),
        (True, False),
    ]
    (removed,) = logged("reservation_removed")
    assert removed["instance"] == "h/g/p" and removed["exclusive"] is True
    assert models.Event.objects.filter(kind="reservation_removed").get().reservation is None
    assert [(c["node"], c["share"], c["before"]) for c in logged("share_changed")] == [
        ("h/g", 3, 1)
    ]
    assert [(c["max_runtime"], c["before"]) for c in logged("backend_changed")] == [
        (300 * SECOND, None)
    ]
    assert [(c["seconds"], c["before"]) for c in logged("allocation_changed")] == [
        (60 * SECOND, None),
        (None, {"node": "h/g", "seconds": 60 * SECOND, "enforce": "queue", "period": None}),
    ]
