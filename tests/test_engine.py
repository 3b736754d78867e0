"""The database engine: one transaction per step, conditional writes, same rules."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler import engine, models
from scheduler.clock import from_ticks, to_ticks
from scheduler.policy import model as m
from tests.factories import BackendFactory, instance

pytestmark = pytest.mark.django_db

T0 = from_ticks(1_000_000_000_000_000)
SECOND = timedelta(seconds=1)
SETTINGS = m.Settings(
    interactive_ttl=60_000_000,
    batch_interactive_ttl=1_000_000,
    system_max_ttl=28_800_000_000,
    open_timeout=1_800_000_000,
    usage_window=2_419_200_000_000,
    backend_max_runtime=10_800_000_000,
)


def submit(
    job: str,
    *,
    seconds: float = 10,
    backend: str = "sim_a",
    instance: str = "h/g/p",
    **extra: object,
) -> m.Submit:
    return m.Submit(job, instance, backend, round(seconds * 1_000_000), **extra)  # type: ignore[arg-type]


def step(actions: list[m.Action], at: timedelta) -> engine.StepResult:
    return engine.step(actions, at=T0 + at, settings=SETTINGS)


@pytest.fixture
def backend() -> models.Backend:
    instance("h/g/p")
    return BackendFactory(name="sim_a")


def test_it_stores_a_submitted_job_and_starts_it(backend: models.Backend) -> None:
    result = step([submit("j1")], timedelta(0))

    assert result.outcomes == [m.ACCEPTED]
    job = models.Job.objects.get(uid="j1")
    assert (job.status, job.lane, job.started_at) == (m.RUNNING, m.FAIR_SHARE, T0)
    assert job.runtime_limit == timedelta(hours=3)
    assert list(models.Event.objects.values_list("kind", flat=True)) == [
        "job_submitted",
        "job_started",
    ]


def test_it_finishes_the_job_at_its_modeled_end_and_charges_usage(backend: models.Backend) -> None:
    step([submit("j1", seconds=10), submit("j2", seconds=5)], timedelta(0))

    step([], 12 * SECOND)

    j1, j2 = models.Job.objects.get(uid="j1"), models.Job.objects.get(uid="j2")
    assert (j1.status, j1.ended_at) == (m.COMPLETED, T0 + 10 * SECOND)
    assert (j2.status, j2.started_at) == (m.RUNNING, T0 + 10 * SECOND)
    charge = models.UsageCharge.objects.get()
    assert (charge.kind, charge.microseconds, charge.job) == ("run", 10_000_000, j1)


def test_it_refuses_without_storing_anything(backend: models.Backend) -> None:
    result = step([submit("j1", session="nope")], timedelta(0))

    assert result.outcomes == [m.Outcome(False, m.UNKNOWN_SESSION)]
    assert not models.Job.objects.exists()
    assert not models.Event.objects.exists()


def test_it_keeps_session_state_and_timers_across_steps(backend: models.Backend) -> None:
    step(
        [m.CreateSession("s1", "h/g/p", "sim_a"), submit("j1", seconds=5, session="s1")],
        timedelta(0),
    )
    step([], 5 * SECOND)  # j1 ends: the interactive timeout starts and the session holds

    session = models.Session.objects.get(uid="s1")
    assert session.state == m.ACTIVE
    assert session.interactive_deadline == T0 + 65 * SECOND
    assert session.ttl_deadline == T0 + timedelta(hours=8)
    assert models.Backend.objects.get().hold_session == session

    step([], 65 * SECOND)

    session.refresh_from_db()
    assert session.state == m.INACTIVE
    assert session.interactive_deadline is None
    hold = models.UsageCharge.objects.get(kind="hold")
    assert (hold.microseconds, hold.session) == (60_000_000, session)


def test_it_processes_overdue_instants_in_order(backend: models.Backend) -> None:
    step(
        [submit("j1", seconds=10), submit("j2", seconds=10), submit("j3", seconds=10)], timedelta(0)
    )

    step([], 100 * SECOND)  # nobody stepped in between: every end is applied at its own time

    starts = dict(models.Job.objects.values_list("uid", "started_at"))
    assert starts == {"j1": T0, "j2": T0 + 10 * SECOND, "j3": T0 + 20 * SECOND}


def test_a_concurrent_change_aborts_the_write(
    backend: models.Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    step([submit("j1", seconds=10), submit("j2", seconds=10)], timedelta(0))
    real_load = engine.load

    def load_then_cancel_elsewhere(*args: object, **kwargs: object) -> engine.Snapshot:
        snapshot = real_load(*args, **kwargs)  # type: ignore[arg-type]
        models.Job.objects.filter(uid="j2").update(status=m.CANCELLED)  # another writer
        return snapshot

    monkeypatch.setattr(engine, "load", load_then_cancel_elsewhere)

    with pytest.raises(engine.Conflict):
        step([], 10 * SECOND)

    assert models.Job.objects.get(uid="j1").status == m.RUNNING  # the step was rolled back


def test_it_retries_a_conflicting_step_on_fresh_state(
    backend: models.Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    step([submit("j1", seconds=10), submit("j2", seconds=10)], timedelta(0))
    real_load = engine.load
    calls = []

    def load_with_one_interference(*args: object, **kwargs: object) -> engine.Snapshot:
        snapshot = real_load(*args, **kwargs)  # type: ignore[arg-type]
        if not calls:
            models.Job.objects.filter(uid="j2").update(status=m.CANCELLED)
        calls.append(1)
        return snapshot

    monkeypatch.setattr(engine, "load", load_with_one_interference)

    step([], 10 * SECOND)

    # The interfering write was rolled back with the first attempt; the second
    # attempt reloaded and applied the step once.
    assert len(calls) == 2
    assert models.Job.objects.get(uid="j1").status == m.COMPLETED
    assert models.Job.objects.get(uid="j2").status == m.RUNNING
    assert models.Event.objects.filter(kind="job_started", job__uid="j2").count() == 1


def test_shares_and_prior_usage_steer_the_fair_share_lane(backend: models.Backend) -> None:
    instance("h/g/q")
    instance("h/g/p", share=1)
    models.UsageCharge.objects.create(
        instance=instance("h/g/p"), kind="prior", microseconds=50_000_000, ended_at=T0
    )
    step(
        [
            submit("blocker", seconds=1, instance="h/g/q"),
            submit("p1"),
            submit("q1", instance="h/g/q"),
        ],
        timedelta(0),
    )

    step([], 1 * SECOND)

    # h/g/q used 1 s, h/g/p 50 s: q1 goes first although p1 is older.
    assert models.Job.objects.get(uid="q1").status == m.RUNNING
    assert to_ticks(models.Job.objects.get(uid="q1").started_at) == to_ticks(T0 + SECOND)
