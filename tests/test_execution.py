"""Executor workers (PostgreSQL): the leader hands started jobs to procrastinate's
queue; a worker runs each once, under the job's lock, and writes its result once;
the leader ends the job at its modeled end; a dead worker's job goes to another
worker, and fails as `executor_lost` after too many losses."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from scheduler import circuits, models
from scheduler.caps import EXECUTION_LIMIT_EXCEEDED
from scheduler.clock import FakeClock
from scheduler.engine.loop import Scheduler
from scheduler.execution import EXECUTION_FAILED, EXECUTOR_LOST, LOCK_SPACE, Attempt, Worker
from scheduler.pg import connect
from scheduler.policy import model as m
from tests.factories import BackendFactory, queue_job
from tests.slow_circuits import runaway_execute, sleepy_execute

# Threads and child processes read the jobs: the test's rows must be committed.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]

NOW = timezone.now().replace(microsecond=0)
SECOND = timedelta(seconds=1)


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    w = Worker(concurrency=2, memory_mb=256, grace=0.05)
    yield w
    w.close()


@pytest.fixture(scope="module")
def sleepy() -> Iterator[Worker]:
    w = Worker(concurrency=1, memory_mb=256, grace=0.05, execute=sleepy_execute)
    yield w
    w.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def scheduler(clock: FakeClock, settings: Any) -> Scheduler:
    settings.QDASH_EAGER_LEADER = False
    BackendFactory(name="sim_a")
    return Scheduler(clock=clock, executors="workers")


def start(scheduler: Scheduler, uid: str = "qjob1", **fields: Any) -> models.Job:
    """Queue a job on the idle sim_a and let the leader start it."""
    fields.setdefault("params", circuits.sampler_params([circuits.ghz(2)], 100))
    queue_job(uid, inst="h/g/p", at=scheduler.clock.now(), backend="sim_a", expected=5, **fields)
    scheduler.tick()
    job = models.Job.objects.get(uid=uid)
    assert job.status == m.RUNNING
    return job


def tasks(uid: str) -> list[tuple[str, int | None]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, worker_id FROM procrastinate_jobs WHERE lock = %s ORDER BY id", [uid]
        )
        return list(cursor.fetchall())


def test_a_started_job_is_handed_to_the_queue_once(scheduler: Scheduler) -> None:
    job = start(scheduler)
    assert tasks(job.uid) == [("todo", None)]
    scheduler.tick()
    scheduler.executions.queue.recover(time.monotonic() + 60)  # type: ignore[union-attr]
    assert tasks(job.uid) == [("todo", None)]  # still one task, and no circuits ran here
    assert models.Job.objects.get(pk=job.pk).result is None


def test_a_worker_writes_the_result_once_and_the_leader_ends_the_job_at_its_modeled_end(
    scheduler: Scheduler, clock: FakeClock, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = start(scheduler)
    assert worker.run(Attempt(job.uid)) == models.Execution.Outcome.WRITTEN
    assert worker.run(Attempt(job.uid, attempt=2)) == "skipped"
    ledger = list(models.Execution.objects.filter(job=job))
    assert [(e.outcome, e.worker) for e in ledger] == [("written", worker.name)]
    assert ledger[0].ended_at is not None

    woken: list[int] = []
    monkeypatch.setattr(scheduler.executions, "on_ready", lambda: woken.append(1))
    clock.advance(SECOND)
    scheduler.tick()  # the result is seen; the backend stays busy for the modeled 5 s
    assert models.Job.objects.get(pk=job.pk).status == m.RUNNING
    assert scheduler.tick() == NOW + 5 * SECOND  # it waits for the end, once
    assert len(woken) == 1  # not woken again and again for the same result
    clock.set(NOW + 5 * SECOND)
    scheduler.tick()
    done = models.Job.objects.get(pk=job.pk)
    assert (done.status, done.ended_at) == (m.COMPLETED, NOW + 5 * SECOND)
    assert "quasi_dists" in done.result or "pub_results" in str(done.result)


def test_circuits_that_fail_fail_the_job_with_their_message(
    scheduler: Scheduler, clock: FakeClock, worker: Worker
) -> None:
    wide = circuits.ghz(30)
    wide.t(0)  # not Clifford: a 30-qubit statevector, far over the 256 MB cap
    job = start(scheduler, params=circuits.sampler_params([wide], 10))
    assert worker.run(Attempt(job.uid)) == models.Execution.Outcome.FAILED
    clock.advance(SECOND)
    scheduler.tick()
    failed = models.Job.objects.get(pk=job.pk)
    assert (failed.status, failed.error) == (m.FAILED, EXECUTION_FAILED)
    assert "too large to simulate" in failed.error_message


def test_a_run_past_its_cap_is_killed_and_fails_the_job_as_execution_limit_exceeded(
    scheduler: Scheduler, clock: FakeClock, settings: Any
) -> None:
    settings.QDASH_EXECUTION = {**settings.QDASH_EXECUTION, "SECONDS": 1}
    runaway = Worker(concurrency=1, memory_mb=256, grace=0.05, execute=runaway_execute)
    try:
        runaway.sandbox.start(wait=True)
        job = start(scheduler)
        assert runaway.run(Attempt(job.uid)) == models.Execution.Outcome.LIMIT
    finally:
        runaway.close()
    clock.advance(SECOND)
    scheduler.tick()
    failed = models.Job.objects.get(pk=job.pk)
    assert (failed.status, failed.error) == (m.FAILED, EXECUTION_LIMIT_EXCEEDED)
    assert failed.error_message == "Execution limit exceeded: the execution took longer than 1 s."
    assert failed.ended_at == NOW + SECOND  # at once, not at its modeled end


def test_a_job_another_worker_holds_waits_for_its_lock(
    scheduler: Scheduler, worker: Worker
) -> None:
    job = start(scheduler)
    holder = connect(application_name="test-holder")
    holder.execute("SELECT pg_advisory_lock(%s, %s)", [LOCK_SPACE, job.pk])
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(worker.run(Attempt(job.uid))))
    thread.start()
    time.sleep(1.0)
    assert not outcome and not models.Execution.objects.exists()  # waiting, not running
    holder.close()  # the holder's connection drops: so does its lock
    thread.join(30)
    assert outcome == [models.Execution.Outcome.WRITTEN]


def test_a_worker_that_loses_its_lock_connection_stops_running_the_job(
    scheduler: Scheduler, sleepy: Worker
) -> None:
    job = start(scheduler)
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(sleepy.run(Attempt(job.uid))))
    thread.start()
    for _ in range(200):
        if models.Execution.objects.filter(job=job).exists():
            break
        time.sleep(0.05)
    killer = connect(application_name="test-killer")
    killed = killer.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'qdash-executor-lock' AND datname = current_database()"
    ).fetchone()
    killer.close()
    assert killed and killed[0] >= 1
    began = time.monotonic()
    thread.join(30)
    assert outcome == [models.Execution.Outcome.ABANDONED]
    assert time.monotonic() - began < 5  # not the minute the circuits would take
    assert models.Job.objects.get(pk=job.pk).result is None


def test_a_job_cancelled_while_it_runs_stops_running(scheduler: Scheduler, sleepy: Worker) -> None:
    job = start(scheduler)
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(sleepy.run(Attempt(job.uid))))
    thread.start()
    time.sleep(1.0)
    models.Job.objects.filter(pk=job.pk).update(status=m.CANCELLED)
    thread.join(30)
    assert outcome == [models.Execution.Outcome.ABANDONED]


def _dead_worker_took(uid: str, job: models.Job, attempt: int) -> None:
    """A worker that stopped sending heartbeats an hour ago was running `uid`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (NOW() - interval '1 hour')"
            " RETURNING id"
        )
        (worker_id,) = cursor.fetchone()
        cursor.execute(
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s "
            "WHERE lock = %s AND status = 'todo'",
            [worker_id, uid],
        )
        assert cursor.rowcount == 1
    models.Execution.objects.create(
        job=job, worker="gone:1", attempt=attempt, started_at=timezone.now()
    )


def test_a_dead_workers_job_goes_to_another_and_fails_as_lost_after_the_last_attempt(
    scheduler: Scheduler, clock: FakeClock, settings: Any
) -> None:
    settings.QDASH_EXECUTION = {**settings.QDASH_EXECUTION, "ATTEMPTS": 2}
    scheduler = Scheduler(clock=clock, executors="workers")
    job = start(scheduler)
    queue = scheduler.executions.queue
    assert queue is not None

    _dead_worker_took(job.uid, job, 1)
    assert queue.recover(time.monotonic() + 10)  # the next recovery round
    assert tasks(job.uid)[-1][0] == "todo"  # handed out again
    assert list(models.Execution.objects.values_list("outcome", flat=True)) == ["lost"]

    _dead_worker_took(job.uid, job, 2)
    assert queue.recover(time.monotonic() + 20)
    assert tasks(job.uid)[-1][0] == "failed"
    clock.advance(SECOND)
    scheduler.tick()
    failed = models.Job.objects.get(pk=job.pk)
    assert (failed.status, failed.error) == (m.FAILED, EXECUTOR_LOST)
    assert "stopped 2 times" in failed.error_message


def test_a_new_leader_hands_out_again_a_job_whose_task_was_lost(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    job = start(scheduler)
    with connection.cursor() as cursor:  # the task never reached the queue
        cursor.execute("DELETE FROM procrastinate_jobs WHERE lock = %s", [job.uid])
    successor = Scheduler(clock=clock, executors="workers")
    successor.tick()
    assert tasks(job.uid) == [("todo", None)]
