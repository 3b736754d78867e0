"""A queued job's place in the published plan, and why it waits (codes and their data)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scheduler import models, plans
from scheduler.clock import from_ticks
from scheduler.plans import PlanView
from scheduler.policy import PlanEntry, wait_reasons
from scheduler.policy import model as m
from scheduler.selectors.access import shown

TIMES = ("end", "interactive_deadline", "start")  # reason data in ticks, shown as times


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
    views = [ReasonView(r.code, _masked(_times(r.data), visible)) for r in reasons]
    return Waiting(plan, entry, views)


def _times(data: Any) -> dict[str, Any]:
    return {
        key: from_ticks(value) if key in TIMES and isinstance(value, int) else value
        for key, value in dict(data).items()
    }


def _masked(data: dict[str, Any], visible: frozenset[str] | None) -> dict[str, Any]:
    if "instance" not in data or shown(data["instance"], visible):
        return data
    hidden = {"instance": None, "job": None, "id": None, "session": None}
    return {key: hidden.get(key, value) for key, value in data.items()}
