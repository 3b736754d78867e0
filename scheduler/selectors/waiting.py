"""A queued job's place in the published plan, and why it waits (codes and their data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scheduler import models, plans
from scheduler.clock import from_ticks, ticks_seconds
from scheduler.plans import PlanView
from scheduler.policy import PlanEntry, wait_reasons
from scheduler.policy import model as m
from scheduler.selectors.access import shown

TIMES = ("end", "interactive_deadline", "start", "frees")  # reason data in ticks, shown as times
# Where a queued job's position stands (`Waiting.position_state`, the API's `position_status`).
PLANNED = "planned"  # the plan gives it a position and an estimated start
COMPUTING = "being_computed"  # the job is newer than the plan: the next one places it
NOT_STARTED = "not_started_by_plan"  # the plan never starts it (paused backend, session ends)
POSITION_TEXTS = {
    PLANNED: "position {position} on {backend}",
    COMPUTING: "position being computed",
    NOT_STARTED: "no position: the plan does not start it (a paused backend, a session "
    "that ends first)",
}
SPANS = ("consumed", "seconds", "needs")  # an allocation's, in ticks, shown as seconds


@dataclass(frozen=True)
class ReasonView:
    """A reason a job waits, with its times as datetimes for the templates."""

    code: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Waiting:
    """What the published plan says about a queued job."""

    plan: PlanView | None
    entry: PlanEntry | None
    reasons: list[ReasonView]

    @property
    def position(self) -> int | None:
        return self.entry.position if self.entry else None

    @property
    def estimated_start(self) -> datetime | None:
        start = self.entry.start if self.entry else None
        return None if start is None else from_ticks(start)

    @property
    def lane(self) -> str | None:
        return self.entry.lane if self.entry else None

    @property
    def stale(self) -> bool:
        return self.plan is not None and self.plan.stale()

    @property
    def position_state(self) -> str:
        """PLANNED, COMPUTING (no entry: the job is newer than the plan) or NOT_STARTED."""
        if self.entry is None:
            return COMPUTING
        return PLANNED if self.entry.position is not None else NOT_STARTED

    @property
    def computing(self) -> bool:
        return self.entry is None

    def position_text(self, backend: str) -> str:
        """The position in words, as the API's `position_detail` gives it."""
        return POSITION_TEXTS[self.position_state].format(position=self.position, backend=backend)


def job_waiting(
    job: models.Job, plan: PlanView | None = None, *, visible: frozenset[str] | None = None
) -> Waiting | None:
    """The plan's entry of a queued job and the reasons it waits (None if not queued).

    Reads the published plan (two small rows); never runs the rules. Reasons about
    another instance's job or session name neither for a viewer who does not see
    that instance (`visible`, None: all).
    """
    if job.status != m.QUEUED:
        return None
    plan = plan or plans.current()
    entry = plans.entry(plan, job.uid) if plan is not None else None
    if plan is None or entry is None or entry.backend not in plan.backends:
        return Waiting(plan, None, [])
    session = job.session
    reasons = wait_reasons(
        plan.backends[entry.backend],
        entry,
        instance=job.instance.path,
        session=session.uid if session else None,
        session_state=session.state if session else None,
    )
    views = [ReasonView(r.code, _masked(_times(r.code, r.data), visible)) for r in reasons]
    return Waiting(plan, entry, views)


def _times(code: str, data: Any) -> dict[str, Any]:
    out = {}
    for key, value in dict(data).items():
        if key in TIMES and isinstance(value, int):
            value = from_ticks(value)
        elif code == "allocation_exhausted" and key in SPANS and isinstance(value, int):
            value = ticks_seconds(value)
        out[key] = value
    return out


def _masked(data: dict[str, Any], visible: frozenset[str] | None) -> dict[str, Any]:
    if "instance" not in data or shown(data["instance"], visible):
        return data
    hidden = {"instance": None, "job": None, "id": None, "session": None}
    return {key: hidden.get(key, value) for key, value in data.items()}
