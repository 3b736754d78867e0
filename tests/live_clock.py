"""The live engine on a fake clock: what the live-rule and replay tests share."""

from __future__ import annotations

from datetime import datetime, timedelta

from scheduler import models
from scheduler.clock import FakeClock
from scheduler.engine.loop import Scheduler
from scheduler.policy import model as m
from tests.factories import record

SECOND = timedelta(seconds=1)


class FakeClockLive:
    """A scheduler (set by the subclass) ticking on a fake clock that starts at `t0`."""

    scheduler: Scheduler

    def __init__(self, t0: datetime) -> None:
        self.t0 = t0
        self.clock = FakeClock(t0)

    def at(self, seconds: float) -> datetime:
        return self.t0 + seconds * SECOND

    def act(self, *actions: m.Action) -> None:
        for action in actions:
            record(action, at=self.clock.now())
        self.scheduler.tick()

    def run_until(self, seconds: float) -> None:
        """Tick at every wake-up the scheduler asks for, up to `t0 + seconds`."""
        end = self.at(seconds)
        while True:
            wake = self.scheduler.tick()
            if wake is None or wake > end:
                self.clock.set(end)
                self.scheduler.tick()
                return
            self.clock.set(max(wake, self.clock.now()))

    def job(self, uid: str) -> models.Job:
        return models.Job.objects.get(uid=uid)
