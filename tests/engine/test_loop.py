"""The live scheduler's single steps, on a fake clock with an inline executor."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from scheduler import models
from scheduler.caps import EXECUTION_FAILED
from scheduler.clock import FakeClock, from_ticks
from scheduler.engine import eager
from scheduler.engine.loop import Scheduler
from scheduler.policy import model as m
from tests.factories import BackendFactory, instance, queue_job, record

pytestmark = pytest.mark.django_db

T0 = from_ticks(1_800_000_000_000_000)
SECOND = 1_000_000


class FakeExecutor:
    """Counts executions; fails the programs it is told to."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[str] = []
        self.fail = fail

    def __call__(self, program_id: str, params: dict, **options: Any) -> str:
        self.calls.append(params["name"])
        if self.fail:
            raise RuntimeError("circuit too large to simulate")
        return json.dumps({"result": params["name"]})


@pytest.fixture
def clock(settings: Any) -> FakeClock:
    settings.QDASH_EAGER_LEADER = False  # the scheduler under test applies every input
    settings.QDASH_APPLY_WAIT = 0
    instance("h/g/p")
    BackendFactory(name="sim_a")
    return FakeClock(T0)


def submit(clock: FakeClock, job: str, seconds: int, **extra: Any) -> None:
    """A job as a web process queues it; the next tick applies it."""
    queue_job(job, inst="h/g/p", at=clock.now(), expected=seconds, params={"name": job}, **extra)


def status(uid: str) -> str:
    return models.Job.objects.get(uid=uid).status


def test_it_executes_a_started_job_and_completes_it_after_its_modeled_time(
    clock: FakeClock,
) -> None:
    executor = FakeExecutor()
    scheduler = Scheduler(clock=clock, execute=executor, inline=True)
    submit(clock, "j1", 5)

    wake_at = scheduler.tick()

    assert executor.calls == ["j1"]
    assert status("j1") == m.RUNNING
    assert wake_at == T0 + timedelta(seconds=5)  # the end of the modeled QPU time
    clock.set(wake_at)
    scheduler.tick()
    job = models.Job.objects.get(uid="j1")
    assert (job.status, job.ended_at, json.loads(job.result)) == (
        m.COMPLETED,
        wake_at,
        {"result": "j1"},
    )


def test_it_starts_the_next_job_when_one_completes(clock: FakeClock) -> None:
    scheduler = Scheduler(clock=clock, execute=FakeExecutor(), inline=True)
    submit(clock, "j1", 5)
    submit(clock, "j2", 5)
    scheduler.tick()

    clock.advance(timedelta(seconds=5))
    scheduler.tick()

    assert (status("j1"), status("j2")) == (m.COMPLETED, m.RUNNING)
    assert models.Job.objects.get(uid="j2").started_at == T0 + timedelta(seconds=5)


def test_a_failed_execution_fails_the_job_with_its_message(clock: FakeClock) -> None:
    scheduler = Scheduler(clock=clock, execute=FakeExecutor(fail=True), inline=True)
    submit(clock, "j1", 5)

    scheduler.tick()
    scheduler.tick()

    job = models.Job.objects.get(uid="j1")
    assert (job.status, job.error) == (m.FAILED, EXECUTION_FAILED)
    assert "too large" in job.error_message


def test_a_restarted_scheduler_executes_running_jobs_left_without_results(clock: FakeClock) -> None:
    submit(clock, "j1", 5)
    eager.step(at=clock.now())  # a leader starts it and "crashes" before executing it
    assert status("j1") == m.RUNNING
    executor = FakeExecutor()

    restarted = Scheduler(clock=clock, execute=executor, inline=True)
    restarted.tick()
    clock.advance(timedelta(seconds=5))
    restarted.tick()

    assert executor.calls == ["j1"]
    assert status("j1") == m.COMPLETED
    assert models.Event.objects.filter(kind="job_started").count() == 1


def test_a_restart_does_not_execute_a_job_twice(clock: FakeClock) -> None:
    first = FakeExecutor()
    Scheduler(clock=clock, execute=first, inline=True).tick()
    submit(clock, "j1", 5)
    Scheduler(clock=clock, execute=first, inline=True).tick()  # executes, then "crashes"
    again = FakeExecutor()

    restarted = Scheduler(clock=clock, execute=again, inline=True)
    restarted.tick()
    clock.advance(timedelta(seconds=5))
    restarted.tick()

    assert (first.calls, again.calls) == (["j1"], [])  # the stored result is reused
    assert status("j1") == m.COMPLETED


def test_a_job_cancelled_while_running_is_not_reported_finished(clock: FakeClock) -> None:
    executor = FakeExecutor()
    scheduler = Scheduler(clock=clock, execute=executor, inline=True)
    submit(clock, "j1", 5)
    scheduler.tick()

    clock.advance(timedelta(seconds=1))
    record(m.CancelJob("j1"), at=clock.now())
    clock.advance(timedelta(seconds=4))
    scheduler.tick()

    job = models.Job.objects.get(uid="j1")
    assert (job.status, job.ended_at) == (m.CANCELLED, T0 + timedelta(seconds=1))


def test_a_job_still_executing_at_its_runtime_limit_fails(clock: FakeClock) -> None:
    scheduler = Scheduler(clock=clock, execute=FakeExecutor(), inline=True)
    submit(clock, "j1", 50, max_execution_time=10)
    scheduler.tick()

    clock.advance(timedelta(seconds=10))
    scheduler.tick()

    job = models.Job.objects.get(uid="j1")
    assert (job.status, job.error) == (m.FAILED, m.MAX_EXECUTION_TIME_EXCEEDED)


def test_each_busy_step_logs_one_line_with_its_phases(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    scheduler = Scheduler(clock=clock, execute=FakeExecutor(), inline=True)
    submit(clock, "j1", 5)
    submit(clock, "j2", 5)
    with caplog.at_level(logging.DEBUG, logger="scheduler.steps"):
        scheduler.tick()
        scheduler.tick()  # nothing new

    busy, idle = [r for r in caplog.records if r.name == "scheduler.steps"]
    assert busy.levelno == idle.levelno == logging.DEBUG  # the console has a minute's summary
    line = busy.getMessage()
    assert "inputs=2" in line and "started=1" in line and "finishes=0" in line
    assert "apply_ms=" in line and "write_ms=" in line


def test_its_report_names_the_jobs_it_runs_itself(clock: FakeClock) -> None:
    """The cluster page shows a scheduler without executor workers with its running jobs."""
    scheduler = Scheduler(clock=clock, execute=FakeExecutor(), inline=True)
    submit(clock, "j1", 5)
    submit(clock, "j2", 5)
    scheduler.tick()
    assert (scheduler.detail()["executors"], scheduler.detail()["executing"]) == ("inline", ["j1"])

    clock.advance(timedelta(seconds=5))
    scheduler.tick()
    assert scheduler.detail()["executing"] == ["j2"]


def test_steps_in_a_stream_are_spaced_and_a_step_after_a_quiet_spell_is_not() -> None:
    import asyncio

    from scheduler.engine.loop import Spacing

    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    spacing = Spacing(0.02, clock=lambda: now[0], sleep=sleep)

    async def steps() -> list[float]:
        waits = [await spacing.wait()]  # the first step: at once
        now[0] += 0.005  # a wake-up 5 ms after that step began
        waits.append(await spacing.wait())
        now[0] += 1.0  # a quiet second
        waits.append(await spacing.wait())
        return waits

    assert [round(w, 6) for w in asyncio.run(steps())] == [0.0, 0.015, 0.0]
    assert slept == [0.015]
