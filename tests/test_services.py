"""Services: reservation checks, and writes that go through the engine."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from scheduler import models, services
from scheduler.clock import FakeClock, from_ticks
from scheduler.engine import eager
from scheduler.policy import model as m
from tests.factories import BackendFactory, instance

pytestmark = pytest.mark.django_db

T0 = from_ticks(1_000_000_000_000_000)
HOUR = timedelta(hours=1)


@pytest.fixture
def backend() -> models.Backend:
    instance("h/g/p")
    return BackendFactory.create(name="sim_a")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def window(
    backend: models.Backend, start: float, end: float, path: str = "h/g/p"
) -> models.Reservation:
    """An unsaved reservation from T0 + `start` to T0 + `end` hours."""
    return models.Reservation(
        backend=backend, instance=instance(path), start=T0 + start * HOUR, end=T0 + end * HOUR
    )


def saved(reservation: models.Reservation) -> models.Reservation:
    reservation.save()
    return reservation


def submit(job: str, **extra: object) -> m.Submit:
    return m.Submit(job=job, instance="h/g/p", backend="sim_a", duration=3600_000_000, **extra)  # type: ignore[arg-type]


def step(clock: FakeClock, *actions: m.Action) -> None:
    eager.step(list(actions), at=clock.now())


# -------------------------------------------------------- reservations_validate
@pytest.mark.parametrize("start, end", [(0, 1), (3, 4), (-5, 1), (3, 10)])
def test_it_accepts_windows_that_touch_or_miss_another(
    backend: models.Backend, start: float, end: float
) -> None:
    saved(window(backend, 1, 3))

    services.reservations_validate(reservation=window(backend, start, end))


@pytest.mark.parametrize("start, end", [(0, 1.5), (2.5, 4), (1.5, 2.5), (0, 4), (1, 3)])
def test_it_refuses_a_window_that_overlaps_another(
    backend: models.Backend, start: float, end: float
) -> None:
    saved(window(backend, 1, 3))

    with pytest.raises(ValidationError) as refused:
        services.reservations_validate(reservation=window(backend, start, end))

    assert refused.value.code == "overlap"
    assert "overlaps the reservation of h/g/p on sim_a" in refused.value.messages[0]


def test_it_accepts_overlapping_windows_on_different_backends(backend: models.Backend) -> None:
    saved(window(backend, 1, 3))

    services.reservations_validate(reservation=window(BackendFactory.create(name="sim_b"), 0, 4))


def test_it_refuses_an_overlap_whichever_instance_reserves(backend: models.Backend) -> None:
    saved(window(backend, 1, 3))

    with pytest.raises(ValidationError):
        services.reservations_validate(reservation=window(backend, 2, 4, path="h/g/q"))


def test_it_does_not_compare_a_window_with_itself(backend: models.Backend) -> None:
    reservation = saved(window(backend, 1, 3))
    reservation.end = T0 + 4 * HOUR

    services.reservations_validate(reservation=reservation)


@pytest.mark.parametrize("end", [1, 0.5])
def test_it_refuses_a_window_that_does_not_end_after_it_starts(
    backend: models.Backend, end: float
) -> None:
    with pytest.raises(ValidationError) as refused:
        services.reservations_validate(reservation=window(backend, 1, end))

    assert refused.value.message_dict == {"end": ["The window must end after it starts."]}


# --------------------------------------------------- reservations_bound_warning
def test_it_warns_about_an_active_session_of_the_instance(
    backend: models.Backend, clock: FakeClock
) -> None:
    step(
        clock,
        m.CreateSession(session="s1", instance="h/g/p", backend="sim_a"),
        submit("j1", session="s1"),
    )

    warning = services.reservations_bound_warning(
        reservation=window(backend, 1, 2), now=clock.now()
    )

    assert warning is not None
    assert "h/g/p on sim_a" in warning and "s1 (active)" in warning
    assert m.RESERVATION_ENDED in warning


@pytest.mark.parametrize("state", [m.OPEN, m.INACTIVE])
def test_it_warns_about_a_session_that_could_activate_in_the_window(
    backend: models.Backend, clock: FakeClock, state: str
) -> None:
    step(clock, m.CreateSession(session="s1", instance="h/g/p", backend="sim_a"))
    if state == m.INACTIVE:  # a one-second job, then the interactive timeout runs out
        step(
            clock,
            m.Submit(job="j1", instance="h/g/p", backend="sim_a", duration=1_000_000, session="s1"),
        )
        clock.advance(timedelta(minutes=2))
        step(clock)
    assert models.Session.objects.get().state == state

    warning = services.reservations_bound_warning(
        reservation=window(backend, -1, 2), now=clock.now()
    )

    assert warning is not None and f"s1 ({state})" in warning


def test_it_does_not_warn_without_a_live_session_there(
    backend: models.Backend, clock: FakeClock
) -> None:
    BackendFactory(name="sim_b")
    instance("h/g/q")
    step(
        clock,
        m.CreateSession(session="elsewhere", instance="h/g/p", backend="sim_b"),
        m.CreateSession(session="other", instance="h/g/q", backend="sim_a"),
        m.CreateSession(session="done", instance="h/g/p", backend="sim_a"),
        m.CloseSession("done"),
    )

    warning = services.reservations_bound_warning(
        reservation=window(backend, 1, 2), now=clock.now()
    )

    assert warning is None


def test_it_does_not_warn_about_a_session_that_expires_before_the_window(
    backend: models.Backend, clock: FakeClock
) -> None:
    step(
        clock,
        m.CreateSession(session="s1", instance="h/g/p", backend="sim_a", max_ttl=1_800_000_000),
    )
    step(clock, submit("j1", session="s1"))
    assert models.Session.objects.get().ttl_deadline == T0 + HOUR / 2

    early = services.reservations_bound_warning(
        reservation=window(backend, 0.25, 2), now=clock.now()
    )
    late = services.reservations_bound_warning(reservation=window(backend, 0.5, 2), now=clock.now())

    assert early is not None and late is None


def test_it_does_not_warn_about_an_ended_window(backend: models.Backend, clock: FakeClock) -> None:
    step(clock, m.CreateSession(session="s1", instance="h/g/p", backend="sim_a"))

    warning = services.reservations_bound_warning(
        reservation=window(backend, -2, 0), now=clock.now()
    )

    assert warning is None


# ------------------------------------------------------------ engine writes
def test_it_pauses_a_backend_at_the_clocks_time(backend: models.Backend, clock: FakeClock) -> None:
    returned = services.backends_set_status(backend=backend, status=m.PAUSED, clock=clock)

    assert returned.status == m.PAUSED
    event = models.Event.objects.get(kind="backend_status")
    assert (event.at, event.backend, event.detail) == (T0, backend, {"status": m.PAUSED})


def test_it_refuses_an_unknown_backend_status(backend: models.Backend) -> None:
    with pytest.raises(ValueError, match="unknown backend status"):
        services.backends_set_status(backend=backend, status="broken")


def test_it_cancels_a_running_job_and_starts_the_next(
    backend: models.Backend, clock: FakeClock
) -> None:
    step(clock, submit("j1"), submit("j2"))
    clock.advance(timedelta(seconds=5))

    job = services.jobs_cancel(job=models.Job.objects.get(uid="j1"), clock=clock)

    assert (job.status, job.ended_at) == (m.CANCELLED, T0 + timedelta(seconds=5))
    assert models.Job.objects.get(uid="j2").started_at == T0 + timedelta(seconds=5)


def test_it_closes_a_session_after_its_queued_jobs(
    backend: models.Backend, clock: FakeClock
) -> None:
    step(
        clock,
        m.CreateSession(session="s1", instance="h/g/p", backend="sim_a"),
        submit("j1", session="s1"),
    )

    session = services.sessions_close(session=models.Session.objects.get(), clock=clock)

    assert (session.state, session.accepting_jobs) == (m.ACTIVE, False)


def test_it_cancels_a_session_and_its_queued_jobs(
    backend: models.Backend, clock: FakeClock
) -> None:
    step(
        clock,
        m.CreateSession(session="s1", instance="h/g/p", backend="sim_a"),
        submit("j1", session="s1"),
        submit("j2", session="s1"),
    )

    session = services.sessions_cancel(session=models.Session.objects.get(), clock=clock)

    assert (session.state, session.closed_reason) == (m.CLOSED, m.CLOSED_CANCELLED)
    j2 = models.Job.objects.get(uid="j2")
    assert (j2.status, j2.error) == (m.CANCELLED, m.SESSION_CANCELLED)


def test_the_leader_opens_a_saved_window_when_told_of_it(
    backend: models.Backend, clock: FakeClock
) -> None:
    reservation = saved(window(backend, 0, 1))

    services.reservations_changed(reservation_id=reservation.pk, clock=clock)

    reservation.refresh_from_db()
    assert reservation.started
    assert models.Event.objects.filter(reservation=reservation).exists()
