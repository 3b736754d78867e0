"""The eager step: one step of a leader loaded afresh, in the caller's process.

With `QDASH_EAGER_LEADER` (the test suite's setting, and one-off commands) no
scheduler process runs: a wake-up (`scheduler.wakeup.wake`) steps here and now
instead, and the plan is published at once. The live scheduler keeps one
`Leader` instead (`scheduler.engine.loop`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from scheduler.clock import to_ticks
from scheduler.engine.step import Leader, StepReport
from scheduler.plans import Publisher
from scheduler.policy import make_plan
from scheduler.policy import model as m


def step(
    actions: Sequence[m.Action] = (),
    *,
    at: datetime,
    settings: m.Settings | None = None,
    job_fields: Mapping[str, dict[str, Any]] | None = None,
    session_fields: Mapping[str, dict[str, Any]] | None = None,
) -> StepReport:
    """The committed inputs, then `actions` at `at`, and the plan published at once."""
    ticks = to_ticks(at)
    leader = Leader(settings=settings)
    report = leader.step(
        ticks, [(ticks, list(actions))], job_fields=job_fields, session_fields=session_fields
    )
    assert leader.policy is not None
    Publisher().publish(make_plan(leader.policy, ticks))
    return report
