"""Storage of the scheduler's state. The rules live in `scheduler.policy`.

By concern: `state` (what the leader decides from), `records` (what the leader and
the cluster's processes write beside it) and `history` (the reports' rollups).
"""

from scheduler.models.history import HistoryMark, UsageDay
from scheduler.models.records import (
    Execution,
    PlanPage,
    Process,
    PublishedPlan,
    QueueSample,
    StepRecord,
)
from scheduler.models.state import (
    INSTANCE_PATH,
    Allocation,
    ApiToken,
    Backend,
    Event,
    Input,
    Instance,
    Job,
    Reservation,
    Session,
    UsageCharge,
)

__all__ = [
    "INSTANCE_PATH",
    "Allocation",
    "ApiToken",
    "Backend",
    "Event",
    "Execution",
    "HistoryMark",
    "Input",
    "Instance",
    "Job",
    "PlanPage",
    "Process",
    "PublishedPlan",
    "QueueSample",
    "Reservation",
    "Session",
    "StepRecord",
    "UsageCharge",
    "UsageDay",
]
