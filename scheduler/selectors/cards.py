"""The dashboard's backend cards: what runs, the active session, the window, the queue."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Max
from django.utils import timezone

from scheduler import models, plans
from scheduler.devices.timing import saved_by_backend
from scheduler.policy import LANES
from scheduler.policy import model as m

SAVED_SPAN = timedelta(hours=24)  # the cards' "time saved by session caches"
LANE_LABELS = {m.RESERVATION: "reservation", m.SESSION: "session", m.FAIR_SHARE: "fair-share"}


@dataclass
class BackendCard:
    backend: models.Backend
    running: models.Job | None
    session: models.Session | None  # the active session
    reservation: models.Reservation | None  # in its window now
    held: bool
    depth: dict[str, int]  # queued jobs per lane they wait in, as the leader last wrote
    saved: timedelta = timedelta(0)  # compile time sessions' caches saved, last 24 h
    allocation_blocked: int = 0  # queued jobs allocations keep out (the published plan's)

    @property
    def total(self) -> int:
        return sum(self.depth.values())

    @property
    def lanes(self) -> list[tuple[str, str, int]]:
        return [(lane, LANE_LABELS[lane], self.depth[lane]) for lane in LANES]


def latest_samples(*, backend_ids: Iterable[int] | None = None) -> dict[int, models.QueueSample]:
    """The newest queue sample of each backend: its queue per lane as last committed."""
    newest = models.QueueSample.objects.values("backend").annotate(last=Max("pk")).values("last")
    if backend_ids is not None:
        newest = newest.filter(backend__in=list(backend_ids))
    return {s.backend_id: s for s in models.QueueSample.objects.filter(pk__in=newest)}


def sample_depths(sample: models.QueueSample | None) -> dict[str, int]:
    if sample is None:
        return dict.fromkeys(LANES, 0)
    return {
        m.RESERVATION: sample.reservation,
        m.SESSION: sample.session,
        m.FAIR_SHARE: sample.fair_share,
    }


def backend_cards(*, names: Iterable[str] | None = None) -> list[BackendCard]:
    """One card per backend, from a handful of queries whatever the queue's length."""
    now = timezone.now()
    query = models.Backend.objects.all()
    if names is not None:
        query = query.filter(name__in=list(names))
    backends = list(query)
    ids = [b.pk for b in backends]
    running = {
        j.backend_id: j
        for j in models.Job.objects.filter(status=m.RUNNING, backend_id__in=ids)
        .select_related("instance", "session")
        .defer("params", "result")
    }
    active = {
        s.backend_id: s
        for s in models.Session.objects.filter(state=m.ACTIVE, backend_id__in=ids).select_related(
            "instance", "owner"
        )
    }
    windows = {
        r.backend_id: r
        for r in models.Reservation.objects.filter(
            start__lte=now, end__gt=now, backend_id__in=ids
        ).select_related("instance")
    }
    samples = latest_samples(backend_ids=ids)
    saved = saved_by_backend(since=now - SAVED_SPAN, backend_ids=ids)
    plan = plans.current()
    states = plan.backends if plan is not None else {}
    return [
        BackendCard(
            backend,
            running.get(backend.pk),
            active.get(backend.pk),
            windows.get(backend.pk),
            backend.hold_session_id is not None,
            sample_depths(samples.get(backend.pk)),
            saved.get(backend.pk, timedelta(0)),
            states[backend.name].allocation_blocked if backend.name in states else 0,
        )
        for backend in backends
    ]
