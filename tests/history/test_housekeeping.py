"""The leader's idle housekeeping: it rolls up closed days and, with a retention
setting, prunes in small batches; the loop calls it only when nothing is due soon."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from scheduler import models
from scheduler.clock import FakeClock
from scheduler.engine.loop import IDLE_AGAIN, Scheduler
from scheduler.history import housekeeping, prune, rollups
from scheduler.history.housekeeping import Housekeeping
from tests.history.data import DAY0, at, history

DAYS = 4
NOW = at(DAY0 + timedelta(days=10), 3600)


class Ticking:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.mark.django_db
def test_it_rolls_one_day_a_call_then_prunes_small_batches_then_rests(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(housekeeping, "IDLE_BATCH", 15)
    history(days=DAYS, per_day=20)
    old = models.Job.objects.filter(ended_at__lt=NOW - timedelta(days=7)).count()
    ticking = Ticking()
    keeper = Housekeeping(retention_days=7, archive_dir=tmp_path, monotonic=ticking)
    days = rollups.days_to_roll(NOW)
    for n in range(days):  # one closed day per call
        assert keeper.run(NOW)
        assert keeper.days_rolled == n + 1
    assert models.Job.objects.count() == DAYS * 20  # nothing pruned while rolling
    batches = 0
    while keeper.run(NOW):
        batches += 1
        assert batches <= old  # it ends
    assert batches == -(-old // 15) and keeper.jobs_pruned == old
    archived = {r["job"]["uid"] for f in tmp_path.iterdir() for r in prune.read_archive(f)}
    assert len(archived) == old
    assert not models.Job.objects.filter(ended_at__lt=NOW - timedelta(days=7)).exists()
    assert not keeper.due()  # resting
    assert not keeper.run(NOW)
    ticking.t += housekeeping.REST_SECONDS
    assert keeper.due()


@pytest.mark.django_db
def test_without_a_retention_setting_it_only_rolls_up() -> None:
    history(days=DAYS, per_day=5)
    keeper = Housekeeping(retention_days=None, monotonic=Ticking())
    while keeper.run(NOW):
        pass
    assert rollups.next_day(NOW) is None
    assert models.Job.objects.count() == DAYS * 5


class Recording(Housekeeping):
    def __init__(self, more: bool) -> None:
        super().__init__(monotonic=Ticking())
        self.more = more
        self.calls = 0

    def run(self, now: Any) -> bool:
        self.calls += 1
        return self.more


@pytest.mark.parametrize("more", [False, True])
def test_the_loop_runs_housekeeping_only_when_idle(monkeypatch: Any, more: bool) -> None:
    recording = Recording(more)
    clock = FakeClock(NOW)
    scheduler = Scheduler(clock=clock, inline=True, housekeeping=recording)
    due: dict[str, Any] = {"next": None}
    monkeypatch.setattr(scheduler, "tick", lambda: due["next"])  # the leader's step
    monkeypatch.setattr(scheduler, "publish_plan", lambda: False)
    scheduler.planner.dirty = False  # the plan is published
    timeout = asyncio.run(scheduler._step(poll=5.0))  # nothing is due: idle
    assert recording.calls == 1
    assert timeout == (IDLE_AGAIN if more else pytest.approx(5.0, abs=0.5))
    due["next"] = clock.now() + timedelta(seconds=0.5)  # a timer fires within a second
    assert asyncio.run(scheduler._step(poll=5.0)) == pytest.approx(0.5)
    assert recording.calls == 1  # not idle: no housekeeping
    scheduler.planner.changed()  # a plan is due: the loop comes back for it first
    due["next"] = None
    asyncio.run(scheduler._step(poll=5.0))
    assert recording.calls == 1
    scheduler.shutdown()


class Failing(Housekeeping):
    def run(self, now: Any) -> bool:
        raise RuntimeError("disk full")


@pytest.mark.django_db
def test_a_failing_housekeeping_is_logged_and_rests(caplog: Any) -> None:
    keeper = Failing(monotonic=Ticking())
    scheduler = Scheduler(clock=FakeClock(NOW), inline=True, housekeeping=keeper)
    assert scheduler.housekeep() is False
    assert "housekeeping failed" in caplog.text
    assert not keeper.due()
    scheduler.shutdown()
