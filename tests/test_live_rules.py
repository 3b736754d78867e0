"""The rules on the live engine: the scheduler's ticks on a fake clock, jobs
executed (by a stand-in executor) and reported finished after their modeled time."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from scheduler import models, services
from scheduler.clock import from_ticks
from scheduler.engine.loop import Scheduler
from scheduler.policy import model as m
from scheduler.selectors import job_waiting
from tests.factories import BackendFactory, instance, queue_job
from tests.live_clock import SECOND, FakeClockLive

pytestmark = pytest.mark.django_db

T0 = from_ticks(1_800_000_000_000_000)


class Live(FakeClockLive):
    """A backend `sim_a`, two instances, and a scheduler ticking on a fake clock."""

    def __init__(self) -> None:
        super().__init__(T0)  # web processes store inputs; the scheduler's leader applies them
        self.executed: list[str] = []
        self.scheduler = Scheduler(clock=self.clock, execute=self._execute, inline=True)
        BackendFactory(name="sim_a")
        instance("h/a/p")
        instance("h/b/p")

    def _execute(self, program_id: str, params: dict, **options: Any) -> str:
        self.executed.append(params["job"])
        return "{}"

    def submit(self, job: str, seconds: float, *, inst: str = "h/a/p", **extra: Any) -> bool:
        """Queue a job and let the scheduler apply it; False if the rules refused it."""
        queue_job(job, inst=inst, at=self.clock.now(), expected=seconds, **extra)
        self.scheduler.tick()
        return self.job(job).error != m.SESSION_CLOSED

    def states(self, session: str) -> list[tuple[float, str]]:
        rows = models.Event.objects.filter(session__uid=session, kind="session_state")
        return [((e.at - T0) / SECOND, e.detail["state"]) for e in rows.order_by("id")]


@pytest.fixture
def live(settings: Any) -> Live:
    settings.QDASH_EAGER_LEADER = False  # the scheduler under test applies every change
    settings.QDASH_APPLY_WAIT = 0  # and it runs in this thread: nobody to wait for
    return Live()


def test_a_session_lives_through_every_state(live: Live) -> None:
    live.act(m.CreateSession(session="s", instance="h/a/p", backend="sim_a"))
    live.submit("j1", 5, session="s")
    live.run_until(100)  # j1 runs 0-5; the interactive timeout ends at 65
    live.clock.set(live.at(100))
    live.submit("j2", 5, session="s")  # picked from the fair-share lane: re-activates
    live.run_until(110)
    live.act(m.CloseSession("s"))

    assert live.states("s") == [(0, "active"), (65, "inactive"), (100, "active"), (110, "closed")]
    assert live.executed == ["j1", "j2"]


def test_the_max_ttl_fails_queued_jobs_and_lets_the_running_one_finish(live: Live) -> None:
    live.act(
        m.CreateSession(session="s", instance="h/a/p", backend="sim_a", max_ttl=30 * 1_000_000)
    )
    for name in ("j1", "j2", "j3"):
        live.submit(name, 20, session="s")
    live.run_until(100)

    assert [(live.job(j).status, live.job(j).error) for j in ("j1", "j2", "j3")] == [
        (m.COMPLETED, ""),
        (m.COMPLETED, ""),
        (m.FAILED, m.SESSION_EXPIRED),
    ]
    assert live.job("j2").ended_at == live.at(40)  # started before the max TTL at 30
    assert not live.submit("late", 1, session="s")


def test_an_idle_session_holds_the_backend_until_its_interactive_timeout(live: Live) -> None:
    live.submit("s1", 10, start_session=True, session="s")
    live.clock.set(live.at(1))
    live.submit("other", 10, inst="h/b/p")
    live.run_until(200)

    assert live.job("other").started_at == live.at(70)  # s1 ends at 10, held until 70
    hold = models.UsageCharge.objects.get(kind="hold")
    assert (hold.microseconds, hold.instance.path) == (60_000_000, "h/a/p")


def test_a_reservation_goes_first_and_closes_its_bound_session(live: Live) -> None:
    models.Reservation.objects.create(
        backend=models.Backend.objects.get(name="sim_a"),
        instance=instance("h/b/p"),
        start=live.at(10),
        end=live.at(50),
    )
    live.submit("a1", 20)
    live.submit("a2", 20)
    live.clock.set(live.at(5))
    live.submit("b1", 20, inst="h/b/p", start_session=True, session="sb")
    live.submit("b2", 20, inst="h/b/p", session="sb")
    live.run_until(200)

    assert live.job("b1").lane == m.RESERVATION and live.job("b1").started_at == live.at(20)
    assert live.job("b2").started_at == live.at(40)  # session lane, inside the window
    assert models.Session.objects.get(uid="sb").closed_reason == m.CLOSED_RESERVATION_ENDED
    assert live.job("b2").status == m.COMPLETED  # the running job finishes after the window
    assert live.job("a2").started_at == live.at(60)


def test_cancels_and_a_paused_backend(live: Live) -> None:
    backend = models.Backend.objects.get(name="sim_a")
    live.submit("j1", 10)
    live.submit("j2", 10)
    live.submit("j3", 10)
    live.scheduler.tick()
    services.backends_set_status(backend=backend, status=m.PAUSED, clock=live.clock)
    live.clock.set(live.at(2))
    services.jobs_cancel(job=live.job("j2"), clock=live.clock)
    live.run_until(100)  # the scheduler applies the pause at 0 and the cancel at 2

    assert live.job("j1").status == m.COMPLETED  # the running job finishes
    assert (live.job("j2").status, live.job("j3").status) == (m.CANCELLED, m.QUEUED)
    services.backends_set_status(backend=backend, status=m.ONLINE, clock=live.clock)
    live.scheduler.tick()
    live.clock.set(live.at(101))
    services.jobs_cancel(job=live.job("j3"), clock=live.clock)  # cancels it while running
    live.scheduler.tick()
    assert live.job("j3").status == m.CANCELLED
    assert models.Job.objects.filter(status=m.RUNNING).count() == 0


def test_a_restart_in_a_busy_queue_loses_no_job_and_starts_none_twice(live: Live) -> None:
    for n in range(12):
        live.submit(f"j{n}", 3, inst="h/a/p" if n % 2 else "h/b/p")
    live.run_until(10)  # a few jobs done, one running, the rest queued

    live.scheduler = Scheduler(clock=live.clock, execute=live._execute, inline=True)  # restart
    live.run_until(100)

    assert set(models.Job.objects.values_list("status", flat=True)) == {m.COMPLETED}
    started = models.Event.objects.filter(kind="job_started")
    assert started.count() == 12 == len(set(started.values_list("job", flat=True)))
    assert sorted(live.executed) == sorted(f"j{n}" for n in range(12))


def test_a_job_waits_for_its_allocation_and_starts_when_an_operator_removes_it(
    live: Live, client: Any, admin_user: Any
) -> None:
    services.allocations_set(path="h/a", seconds=10, clock=live.clock, actor=admin_user)
    live.submit("a1", 20)  # starts with 10 s left, runs 0-20: active workloads continue
    live.clock.set(live.at(1))
    live.submit("a2", 5)
    live.run_until(50)
    live.scheduler.planner.dirty = True
    live.scheduler.publish_plan()

    assert live.job("a1").ended_at == live.at(20)
    assert live.job("a2").status == m.QUEUED
    waiting = job_waiting(live.job("a2"))
    assert waiting is not None and [r.code for r in waiting.reasons] == ["allocation_exhausted"]
    assert waiting.reasons[0].data["consumed"] == 20 and waiting.reasons[0].data["seconds"] == 10
    client.force_login(admin_user)
    page = client.get(reverse("job", args=["a2"])).content.decode()
    assert "h/a has used 20 s of its 10 s allocation; it frees at" in page

    live.clock.set(live.at(60))
    assert services.allocations_remove(path="h/a", clock=live.clock, actor=admin_user)
    live.run_until(100)

    assert live.job("a2").started_at == live.at(60)
    assert live.job("a2").status == m.COMPLETED
    kinds = models.Event.objects.filter(kind="allocation_changed").values_list("detail", flat=True)
    assert [(d["node"], d["seconds"]) for d in kinds] == [("h/a", 10_000_000), ("h/a", None)]
