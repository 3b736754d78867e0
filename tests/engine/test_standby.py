"""A standby's warm memory: it follows the leader's journal, takes over with it and
agrees with a cold load; any gap or difference sends it back to a full load."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from scheduler import models
from scheduler.clock import FakeClock, from_ticks, to_ticks
from scheduler.engine.journal import digest
from scheduler.engine.loop import Scheduler
from scheduler.engine.standby import Standby
from scheduler.engine.step import Leader, StepReport
from scheduler.policy import make_plan
from scheduler.policy import model as m
from tests.engine.test_step import SETTINGS, T0
from tests.factories import BackendFactory, instance, queue_job, record

pytestmark = pytest.mark.django_db

SECOND = 1_000_000
INSTANCES = ["h/g/p", "h/g/q", "k/g/p"]
BACKENDS = ["sim_a", "sim_b"]


@pytest.fixture
def backends() -> None:
    instance("h/g/p")
    instance("h/g/q", share=2.0)
    instance("k/g/p", share=0.5)
    for name in BACKENDS:
        BackendFactory(name=name)


def quiet(events: list[m.Event]) -> None:
    """No dashboards in these tests."""


def busy(leader: Leader, t: int, steps: int, seed: int) -> int:
    """`steps` steps of `leader` with inputs of every kind, as web processes store them
    (jobs alone and in sessions, cancellations, closings, a backend paused and resumed,
    executors' reports); returns the instant it reached."""
    rng = random.Random(seed)
    sessions: list[str] = []
    for k in range(steps):
        t += rng.randint(1, 4) * SECOND
        at = from_ticks(t)
        for j in range(rng.randint(0, 3)):
            uid = f"j{seed}-{k}-{j}"
            backend, inst = rng.choice(BACKENDS), rng.choice(INSTANCES)
            if rng.random() < 0.15:
                queue_job(
                    uid, inst=inst, at=at, backend=backend, session=uid, start_session=True,
                    duration=rng.randint(1, 5),
                )  # fmt: skip
                sessions.append(uid)
            elif sessions and rng.random() < 0.3:
                joined = models.Session.objects.get(uid=rng.choice(sessions))
                if joined.state != m.CLOSED:
                    queue_job(
                        uid, inst=joined.instance.path, at=at, backend=joined.backend.name,
                        session=joined.uid, duration=rng.randint(1, 5),
                    )  # fmt: skip
            elif rng.random() < 0.2:
                queue_job(uid, inst=inst, at=at, backend=backend, expected=rng.randint(1, 5))
            else:
                queue_job(uid, inst=inst, at=at, backend=backend, duration=rng.randint(1, 6))
        queued = list(models.Job.objects.filter(status=m.QUEUED).values_list("uid", flat=True))
        if queued and rng.random() < 0.25:
            record(m.CancelJob(rng.choice(sorted(queued))), at=at)
        if sessions and rng.random() < 0.1:
            record(m.CloseSession(rng.choice(sessions)), at=at)
        if rng.random() < 0.05:
            record(m.SetBackendStatus("sim_b", rng.choice(["paused", "online"])), at=at)
        leader.step(t, reports=_reports(leader, rng))
    return t


def _reports(leader: Leader, rng: random.Random) -> list[m.FinishJob]:
    """Executors' reports: a running job with only a modeled time ends now and then."""
    policy = leader.policy
    if policy is None:
        return []
    running = [b.running for b in policy.backends.values() if b.running is not None]
    return [
        m.FinishJob(job.id, m.COMPLETED)
        for job in running
        if job.duration is None and rng.random() < 0.5
    ]


def first_step(leader: Leader, now: int) -> tuple[StepReport, dict[str, Any]]:
    """`leader`'s first step, rolled back afterwards (so another can take it on the same
    rows); what it did and the state it left."""
    with transaction.atomic():
        report = leader.step(now)
        state = state_of(leader, now)
        transaction.set_rollback(True)
    return report, state


def state_of(leader: Leader, now: int) -> dict[str, Any]:
    policy = leader.policy
    assert policy is not None
    plan = make_plan(policy, now)
    return {
        "digest": digest(policy),
        "jobs": {uid: (job.status, job.lane, job.started_at) for uid, job in policy.jobs.items()},
        "written_jobs": dict(leader.written.jobs),
        "open_sessions": {
            uid: (s.state, s.accepting_jobs, s.ttl_deadline, s.interactive_deadline)
            for uid, s in policy.sessions.items()
            if s.state != m.CLOSED
        },
        "written_open_sessions": {
            uid: row for uid, row in leader.written.sessions.items() if row[1] != m.CLOSED
        },
        "plan": (plan.entries, plan.backends),
    }


def events_of(report: StepReport) -> list[tuple[Any, ...]]:
    return [
        (e.kind, e.at, getattr(e.subject, "id", None) or getattr(e.subject, "name", None))
        for e in report.instant.events
    ]


def test_a_standby_that_follows_takes_over_and_its_first_step_agrees_with_a_cold_load(
    backends: None,
) -> None:
    leader = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    standby = Standby(settings=SETTINGS, clock=FakeClock(T0))
    t = busy(leader, to_ticks(T0), 15, seed=1)
    standby.follow()  # loads once
    t = busy(leader, t, 30, seed=2)
    assert standby.follow() > 0  # applied the leader's steps, without loading again
    t = busy(leader, t, 20, seed=3)  # the tail: committed before the leader dies
    queue_job("late", inst="h/g/p", at=from_ticks(t), duration=3)  # pending at the takeover
    assert standby.loads == 1 and standby.applied >= 20
    assert models.Job.objects.filter(status=m.QUEUED).count() > 10

    now = t + 90 * SECOND  # past sessions' interactive timeouts: holds end, jobs start
    warm = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    warm.takeover = standby.take_over
    warm_report, warm_state = first_step(warm, now)
    cold = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    cold_report, cold_state = first_step(cold, now)

    assert (warm.loads, cold.loads, standby.takeovers) == (0, 1, 1)
    assert events_of(warm_report) == events_of(cold_report)
    kinds = {kind for kind, _, _ in events_of(warm_report)}
    assert {"job_submitted", "job_started", "job_ended", "timer_fired"} <= kinds
    assert warm_state == cold_state


def test_a_new_leader_goes_on_from_the_taken_over_memory(backends: None) -> None:
    leader = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    standby = Standby(settings=SETTINGS, clock=FakeClock(T0))
    t = busy(leader, to_ticks(T0), 10, seed=4)
    standby.follow()
    t = busy(leader, t, 10, seed=5)

    warm = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    warm.takeover = standby.take_over
    t = busy(warm, t, 25, seed=6)  # it leads on, writing rows conditional on its memory

    assert warm.loads == 0
    cold = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    _, cold_state = first_step(cold, t + SECOND)
    _, warm_state = first_step(warm, t + SECOND)
    assert warm_state == cold_state
    # A second standby follows the new leader's journal from where it began.
    follower = Standby(settings=SETTINGS, clock=FakeClock(T0))
    follower.follow()
    busy(warm, t, 10, seed=7)
    follower.follow()
    assert follower.loads == 1 and follower.warm


def test_a_scheduler_that_wins_the_lock_leads_with_its_standby_memory(backends: None) -> None:
    leader = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    t = busy(leader, to_ticks(T0), 10, seed=13)
    clock = FakeClock(from_ticks(t + SECOND))
    scheduler = Scheduler(
        clock=clock,
        leader=Leader(settings=SETTINGS, resumes=True, on_commit=quiet),
        execute=lambda program_id, params, **options: "{}",
        inline=True,
    )
    standby = scheduler.standby
    assert standby is not None
    standby.follow()
    assert scheduler.detail()["standby"]["warm"]
    t = busy(leader, t, 5, seed=14)  # the old leader's tail
    last = models.StepRecord.objects.order_by("seq").last()
    assert last is not None

    assert asyncio.run(scheduler._leads(None))  # it wins the lock
    clock.set(from_ticks(t + SECOND))
    queue_job("after", inst="h/g/p", at=clock.now(), duration=2)
    scheduler.tick()

    assert (scheduler.leader.loads, standby.takeovers) == (0, 1)
    assert "standby" not in scheduler.detail()
    row = models.StepRecord.objects.order_by("seq").last()
    assert row is not None and (row.seq, row.loaded) == (last.seq + 1, False)


def test_a_standby_loaded_where_a_new_leader_loads_follows_it(backends: None) -> None:
    old = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    t = busy(old, to_ticks(T0), 10, seed=15)
    standby = Standby(settings=SETTINGS, clock=FakeClock(T0))
    standby.follow()  # loaded from the rows a new leader is about to load from

    new = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    t = busy(new, t, 10, seed=16)  # its first step loads afresh (and says so)
    first = models.StepRecord.objects.get(seq=standby.memory.seq + 1)
    assert first.loaded
    standby.follow()

    assert standby.loads == 1 and standby.warm  # it applied that step like any other
    assert standby.memory.seq == models.StepRecord.objects.order_by("seq").last().seq  # type: ignore[union-attr]
    busy(old, t, 1, seed=17)  # the old leader comes back (a conflict): it loads afresh
    standby.follow()
    assert not standby.warm and "loaded afresh" in standby.reason  # having applied since
    standby.follow()
    assert standby.loads == 2 and standby.warm


def _gap(rows: Any) -> None:
    rows.order_by("seq")[1].delete()  # as pruning would, or a row never seen


def _digest(rows: Any) -> None:
    row = rows.order_by("seq")[2]
    row.digest["backends"]["sim_a"][0] += 1  # one more job waiting than the leader had
    row.save()


def _loaded(rows: Any) -> None:
    models.StepRecord.objects.filter(pk=rows.order_by("seq")[1].pk).update(loaded=True)


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [(_gap, "missing"), (_digest, "differs"), (_loaded, "loaded afresh")],
    ids=["missing row", "digest differs", "leader loaded"],
)
def test_a_standby_that_finds_a_gap_loads_again(
    backends: None, spoil: Callable[[Any], None], reason: str
) -> None:
    leader = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    standby = Standby(settings=SETTINGS, clock=FakeClock(T0))
    t = busy(leader, to_ticks(T0), 10, seed=8)
    standby.follow()
    seq = standby.memory.seq
    t = busy(leader, t, 15, seed=9)
    spoil(models.StepRecord.objects.filter(seq__gt=seq))

    standby.follow()
    assert not standby.warm and reason in standby.reason
    standby.follow()  # loads again, in full, and follows from there
    assert standby.loads == 2 and standby.warm

    warm = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    warm.takeover = standby.take_over
    cold = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    _, warm_state = first_step(warm, t + SECOND)
    _, cold_state = first_step(cold, t + SECOND)
    assert warm.loads == 0 and warm_state == cold_state


def test_a_standby_whose_memory_disagrees_with_the_rows_loads_again(backends: None) -> None:
    leader = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    standby = Standby(settings=SETTINGS, clock=FakeClock(T0))
    t = busy(leader, to_ticks(T0), 20, seed=10)
    standby.follow()
    standby.audit_every = 0  # check the whole queue at every look
    standby.follow()
    assert standby.warm and standby.audits == 1
    # A row changed behind the leader's back: the journal cannot say so, the audit does.
    job = models.Job.objects.filter(status=m.QUEUED).order_by("id").first()
    assert job is not None
    models.Job.objects.filter(pk=job.pk).update(status=m.CANCELLED)

    standby.follow()

    assert not standby.warm and "jobs differ from the database" in standby.reason
    standby.follow()  # loads again: the job is not in its memory any more
    assert standby.loads == 2 and standby.memory.policy is not None
    assert job.uid not in standby.memory.policy.jobs
    warm = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    warm.takeover = standby.take_over
    warm.step(t + SECOND)
    assert warm.loads == 0


def test_a_memory_whose_running_jobs_disagree_with_the_rows_is_not_taken_over(
    backends: None,
) -> None:
    leader = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    standby = Standby(settings=SETTINGS, clock=FakeClock(T0))
    t = busy(leader, to_ticks(T0), 20, seed=18)
    standby.follow()
    running = models.Job.objects.filter(status=m.RUNNING).first()
    if running is None:  # make sure a job runs when the leader dies
        queue_job("long", inst="k/g/p", at=from_ticks(t), backend="sim_b", duration=500)
        t = busy(leader, t + 100 * SECOND, 1, seed=19)
        running = models.Job.objects.filter(status=m.RUNNING).first()
    assert running is not None
    standby.follow()
    models.Job.objects.filter(pk=running.pk).update(status=m.COMPLETED)  # behind its back

    warm = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    warm.takeover = standby.take_over
    warm.step(t + SECOND)

    assert warm.loads == 1 and standby.takeovers == 0  # it loaded in full instead
    assert "running jobs differ from the database" in standby.reason
    assert warm.policy is not None and running.uid not in warm.policy.jobs


def test_a_standby_reports_its_lag_on_the_cluster_page_and_in_metrics(
    backends: None, admin_client: Client
) -> None:
    leader = Leader(settings=SETTINGS, resumes=True, on_commit=quiet)
    scheduler = Scheduler(clock=FakeClock(T0), leader=Leader(settings=SETTINGS, on_commit=quiet))
    standby = scheduler.standby
    assert standby is not None
    t = busy(leader, to_ticks(T0), 5, seed=11)
    standby.follow()
    busy(leader, t, 12, seed=12)
    ahead = models.StepRecord.objects.filter(seq__gt=standby.memory.seq)
    steps, inputs = ahead.count(), sum(ahead.values_list("inputs", flat=True))
    ahead.update(at=timezone.now() - timedelta(seconds=30))  # committed 30 s ago
    standby.follow()

    detail = scheduler.detail()["standby"]
    assert detail["warm"] and detail["lag_s"] >= 30
    assert (detail["behind_steps"], detail["behind_inputs"]) == (steps, inputs)
    assert steps > 0 and inputs > 0
    models.Process.objects.create(
        name="host:4242",
        kind=models.Process.Kind.SCHEDULER,
        host="host",
        pid=4242,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
        detail=scheduler.detail(),
    )

    page = admin_client.get("/cluster").content.decode()
    assert f"{inputs} input" in page and "behind" in page
    metrics = admin_client.get("/metrics", REMOTE_ADDR="127.0.0.1").content.decode()
    assert f'qdash_standby_lag_inputs{{process="host:4242"}} {float(inputs)}' in metrics
    assert 'qdash_standby_lag_seconds{process="host:4242"}' in metrics
    assert 'qdash_standby_warm{process="host:4242"} 1.0' in metrics
