"""The database engine: one transaction per step, conditional writes, same rules."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler import models
from scheduler.clock import from_ticks, to_ticks
from scheduler.engine import eager
from scheduler.engine.save import Conflict
from scheduler.engine.step import Leader, StepReport
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
    return m.Submit(
        job=job, instance=instance, backend=backend, duration=round(seconds * 1_000_000), **extra
    )  # type: ignore[arg-type]


def step(actions: list[m.Action], at: timedelta) -> StepReport:
    return eager.step(actions, at=T0 + at, settings=SETTINGS)


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
        [
            m.CreateSession(session="s1", instance="h/g/p", backend="sim_a"),
            submit("j1", seconds=5, session="s1"),
        ],
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


def test_a_concurrent_change_aborts_the_write(backend: models.Backend) -> None:
    leader = Leader(settings=SETTINGS)
    leader.step(to_ticks(T0), [(to_ticks(T0), [submit("j1"), submit("j2")])])
    models.Job.objects.filter(uid="j2").update(status=m.CANCELLED)  # another writer

    with pytest.raises(Conflict):
        leader.step(to_ticks(T0 + 10 * SECOND), attempts=1)

    assert models.Job.objects.get(uid="j1").status == m.RUNNING  # the step was rolled back
    assert leader.policy is None  # and the memory is dropped, to be loaded afresh


def test_it_retries_a_conflicting_step_on_fresh_state(backend: models.Backend) -> None:
    leader = Leader(settings=SETTINGS)
    leader.step(to_ticks(T0), [(to_ticks(T0), [submit("j1"), submit("j2"), submit("j3")])])
    models.Job.objects.filter(uid="j2").update(status=m.CANCELLED)  # another writer

    leader.step(to_ticks(T0 + 10 * SECOND))

    # The write of j2's start conflicted; the leader reloaded (j2 cancelled) and started j3.
    assert leader.loads == 2
    statuses = dict(models.Job.objects.values_list("uid", "status"))
    assert statuses == {"j1": m.COMPLETED, "j2": m.CANCELLED, "j3": m.RUNNING}
    assert models.Event.objects.filter(kind="job_started", job__uid="j3").count() == 1


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


# ------------------------------------------------------------ the live leader
def paused_queue(leader: Leader, n: int, at: timedelta) -> None:
    """`n` more jobs queued on the paused backend, in one step."""
    t = to_ticks(T0 + at)
    first = models.Job.objects.count()
    leader.step(t, [(t, [submit(f"q{first + k}") for k in range(n)])])


def test_a_steps_queries_do_not_grow_with_the_queue(backend: models.Backend) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import queue_job

    models.Backend.objects.update(status=m.PAUSED)
    leader = Leader(settings=SETTINGS)
    counts = []
    for size, second in ((20, 1), (400, 2)):
        paused_queue(leader, size - models.Job.objects.count(), second * SECOND)
        queue_job(f"new{size}", inst="h/g/p", at=T0 + second * SECOND, duration=5)
        with CaptureQueriesContext(connection) as submission:
            leader.step(to_ticks(T0 + second * SECOND))
        with CaptureQueriesContext(connection) as idle:
            leader.step(to_ticks(T0 + second * SECOND + SECOND // 2))
        counts.append((len(submission), len(idle)))
    assert models.Job.objects.filter(status=m.QUEUED).count() == 401
    assert counts[0] == counts[1], counts
    assert leader.loads == 1  # the state was loaded once, then kept up to date


def test_inputs_apply_in_commit_order_at_their_own_instants(backend: models.Backend) -> None:
    from tests.factories import queue_job, record

    leader = Leader(settings=SETTINGS)
    queue_job("a", inst="h/g/p", at=T0, duration=10)
    queue_job("b", inst="h/g/p", at=T0 + 2 * SECOND, duration=10)
    record(m.CancelJob("b"), at=T0 + 3 * SECOND)
    queue_job("c", inst="h/g/p", at=T0 + 4 * SECOND, duration=10)

    report = leader.step(to_ticks(T0 + 30 * SECOND))  # one late step applies them all

    assert report.inputs == 4 and not models.Input.objects.exists()
    jobs = {j.uid: j for j in models.Job.objects.all()}
    assert (jobs["a"].started_at, jobs["a"].ended_at) == (T0, T0 + 10 * SECOND)
    assert (jobs["b"].status, jobs["b"].ended_at) == (m.CANCELLED, T0 + 3 * SECOND)
    assert (jobs["c"].submitted_at, jobs["c"].started_at) == (T0 + 4 * SECOND, T0 + 10 * SECOND)


def test_a_job_that_raced_a_closing_session_fails_with_session_closed(
    backend: models.Backend,
) -> None:
    from tests.factories import queue_job

    leader = Leader(settings=SETTINGS)
    leader.step(
        to_ticks(T0), [(to_ticks(T0), [submit("j1", seconds=5, start_session=True, session="s")])]
    )
    leader.step(to_ticks(T0 + SECOND), [(to_ticks(T0 + SECOND), [m.CloseSession("s")])])
    # The web process had seen the session open and stored j2 as the close was applied.
    queue_job("j2", inst="h/g/p", at=T0 + 2 * SECOND, duration=5, session="s")

    report = leader.step(to_ticks(T0 + 2 * SECOND))

    j2 = models.Job.objects.get(uid="j2")
    assert report.refused == 1
    assert (j2.status, j2.error, j2.ended_at) == (m.FAILED, m.SESSION_CLOSED, T0 + 2 * SECOND)
    assert models.Event.objects.filter(job=j2, kind="job_refused").exists()


def test_a_leader_loads_no_job_whose_submission_is_pending(backend: models.Backend) -> None:
    from tests.factories import queue_job

    queue_job("j1", inst="h/g/p", at=T0, duration=5, start_session=True, session="s")
    leader = Leader(settings=SETTINGS)
    leader.step(to_ticks(T0))  # loads, then applies the pending input once

    assert models.Event.objects.filter(kind="job_submitted").count() == 1
    assert models.Event.objects.filter(kind="session_created").count() == 1
    assert models.Job.objects.get(uid="j1").status == m.RUNNING


def test_the_leader_forgets_what_ended(backend: models.Backend) -> None:
    leader = Leader(settings=SETTINGS)
    t = to_ticks(T0)
    leader.step(t, [(t, [submit(f"j{k}", seconds=1) for k in range(5)])])
    leader.step(to_ticks(T0 + 10 * SECOND))

    assert leader.policy is not None and leader.policy.jobs == {}
    assert leader.written.jobs == {}
    assert models.Job.objects.filter(status=m.COMPLETED).count() == 5


def test_queue_samples_follow_the_lanes(backend: models.Backend) -> None:
    leader = Leader(settings=SETTINGS)
    t = to_ticks(T0)
    leader.step(t, [(t, [submit("j1", seconds=50), submit("j2"), submit("j3")])])

    sample = models.QueueSample.objects.get(backend=backend)
    assert (sample.fair_share, sample.entered_fair_share, sample.started_fair_share) == (2, 3, 1)
    leader.step(to_ticks(T0 + 2 * SECOND))  # within SAMPLE_SPAN: the same row is updated
    assert models.QueueSample.objects.count() == 1
    leader.step(to_ticks(T0 + 55 * SECOND))  # j1 done, j2 running: a new row
    newest = models.QueueSample.objects.order_by("at").last()
    assert models.QueueSample.objects.count() == 2
    assert (newest.fair_share, newest.started_fair_share) == (1, 2)
