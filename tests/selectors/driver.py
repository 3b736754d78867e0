"""One leader stepping on the test's own clock, as the live scheduler does."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scheduler.clock import to_ticks
from scheduler.engine.step import Leader
from scheduler.policy import model as m
from tests.factories import queue_job, record


class Driver:
    """One leader stepping at every due instant, as the live scheduler does."""

    def __init__(self) -> None:
        self.leader = Leader()

    def run_until(self, at: datetime) -> None:
        end = to_ticks(at)
        while (due := self.leader.next_due()) is not None and due < end:
            self.leader.step(due)
        self.leader.step(end)

    def submit(
        self, uid: str, *, inst: str, at: datetime, seconds: float = 2, **extra: Any
    ) -> None:
        self.run_until(at)
        queue_job(uid, inst=inst, at=at, duration=seconds, **extra)
        self.leader.step(to_ticks(at))

    def act(self, action: m.Action, at: datetime) -> None:
        self.run_until(at)
        record(action, at=at)
        self.leader.step(to_ticks(at))
