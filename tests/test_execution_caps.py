"""Executions in the embedded scheduler run in capped child processes that can be stopped."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from scheduler import models
from scheduler.caps import EXECUTION_LIMIT_EXCEEDED, EXECUTOR_LOST
from scheduler.engine.loop import Scheduler
from scheduler.policy import model as m
from tests.factories import BackendFactory, instance, queue_job, record
from tests.slow_circuits import hungry_execute, runaway_execute

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def capped(settings: Any) -> None:
    settings.QDASH_EAGER_LEADER = False  # the scheduler under test applies every input
    settings.QDASH_APPLY_WAIT = 0
    settings.QDASH_EXECUTION = {**settings.QDASH_EXECUTION, "SECONDS": 2, "MEMORY_MB": 200}
    instance("h/g/p")
    BackendFactory(name="sim_a")
    BackendFactory(name="sim_b")


def submit(job: str, backend: str = "sim_a", **params: Any) -> None:
    queue_job(job, inst="h/g/p", backend=backend, at=timezone.now(), expected=0, params=params)


def job(uid: str) -> models.Job:
    return models.Job.objects.get(uid=uid)


def run_until(scheduler: Scheduler, done: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "the scheduler did not get there"
        scheduler.tick()
        time.sleep(0.05)


@pytest.fixture
def scheduler() -> Any:
    made: list[Scheduler] = []

    def make(execute: Any) -> Scheduler:
        made.append(Scheduler(execute=execute, workers=2))
        assert made[-1].executions._children is not None
        made[-1].executions._children.start(wait=True)  # the caps below count from a warm pool
        return made[-1]

    yield make
    for each in made:
        each.shutdown()


def test_a_runaway_is_killed_at_its_cap_while_an_honest_job_completes(scheduler: Any) -> None:
    live = scheduler(runaway_execute)
    submit("runaway")
    submit("next")  # waits behind the runaway on sim_a
    submit("honest", backend="sim_b", quick=True)

    run_until(live, lambda: job("honest").status == m.COMPLETED, seconds=20)
    assert job("runaway").status == m.RUNNING  # the runaway held sim_a meanwhile
    run_until(live, lambda: job("runaway").status == m.FAILED)

    runaway = job("runaway")
    assert runaway.error == EXECUTION_LIMIT_EXCEEDED
    assert runaway.error_message == "Execution limit exceeded: the execution took longer than 2 s."
    assert job("next").status == m.RUNNING  # the backend was freed at once
    assert job("honest").result == '{"quick": true}'
    ledger = models.Execution.objects.get(job=runaway)
    assert (ledger.outcome, ledger.ended_at is not None) == ("limit", True)


def test_a_run_past_its_memory_cap_fails_naming_the_cap(scheduler: Any) -> None:
    live = scheduler(hungry_execute)
    submit("hungry")

    run_until(live, lambda: job("hungry").status == m.FAILED)

    hungry = job("hungry")
    assert hungry.error == EXECUTION_LIMIT_EXCEEDED
    assert "the execution needed more than 200 MB of memory" in hungry.error_message


def test_the_wall_clock_cap_is_at_most_the_jobs_runtime_limit(settings: Any) -> None:
    from scheduler import caps

    settings.QDASH_EXECUTION = {**settings.QDASH_EXECUTION, "SECONDS": 600}
    assert caps.wall_seconds(None) == 600
    assert caps.wall_seconds(30) == 30 + caps.LIMIT_GRACE_SECONDS
    assert caps.wall_seconds(10_800) == 600


def test_cancelling_a_running_job_kills_its_execution(scheduler: Any) -> None:
    live = scheduler(runaway_execute)
    submit("spinning")
    run_until(live, lambda: "spinning" in live.executions._child_runs)
    child = live.executions._child_runs["spinning"]

    record(m.CancelJob("spinning"), at=timezone.now())
    run_until(live, lambda: job("spinning").status == m.CANCELLED)
    live.tick()

    assert child.cancelled()
    run_until(live, lambda: models.Execution.objects.filter(outcome="abandoned").exists(), 10)
    assert job("spinning").error_message == ""  # nothing was written for it


def test_a_job_that_stopped_its_executor_twice_is_not_run_again(scheduler: Any) -> None:
    submit("poison")
    first = scheduler(runaway_execute)
    run_until(first, lambda: "poison" in first.executions._child_runs)
    first.shutdown()
    run_until(first, lambda: models.Execution.objects.exclude(outcome="").exists(), 10)
    poison = job("poison")
    # Two earlier processes died running it: their attempts never ended.
    models.Execution.objects.filter(job=poison).update(ended_at=None, outcome="")
    models.Execution.objects.create(job=poison, worker="gone", attempt=2, started_at=timezone.now())

    restarted = scheduler(runaway_execute)
    run_until(restarted, lambda: job("poison").status == m.FAILED, seconds=20)

    poison = job("poison")
    assert poison.error == EXECUTOR_LOST
    assert "stopped its executor 2 times" in poison.error_message
    assert not restarted.executions._child_runs


def test_stopping_the_scheduler_abandons_its_runs_without_failing_them(scheduler: Any) -> None:
    live = scheduler(runaway_execute)
    submit("interrupted")
    run_until(live, lambda: "interrupted" in live.executions._child_runs)

    started = time.monotonic()
    live.shutdown()
    deadline = time.monotonic() + 10
    while not models.Execution.objects.filter(outcome="abandoned").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)

    assert time.monotonic() - started < 10
    interrupted = job("interrupted")
    assert (interrupted.status, interrupted.error_message) == (m.RUNNING, "")
