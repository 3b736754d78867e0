"""Live notifications: after each committed scheduler step, tell the dashboards what changed.

The message only names ids; consumers read the database for the truth. A lost
message leaves a page stale until the next change or a reconnect.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from scheduler.policy import model as m

log = logging.getLogger(__name__)
GROUP = "dashboard"
MESSAGE_TYPE = "dashboard.changed"  # handled by DashboardConsumer.dashboard_changed


def changes(events: Iterable[m.Event]) -> dict[str, Any]:
    """The job, session and backend ids a step's events touched, and when."""
    jobs: dict[str, None] = {}
    sessions: dict[str, None] = {}
    backends: dict[str, None] = {}
    last = None
    for event in events:
        subject = event.subject
        last = event.at
        if isinstance(subject, m.Job):
            jobs[subject.id] = None
            backends[subject.backend] = None
            if subject.session is not None:
                sessions[subject.session.id] = None
        elif isinstance(subject, m.Session):
            sessions[subject.id] = None
            backends[subject.backend] = None
        elif isinstance(subject, m.Backend):
            backends[subject.name] = None
        elif isinstance(subject, m.Reservation):
            backends[subject.backend] = None
    return {
        "jobs": list(jobs),
        "sessions": list(sessions),
        "backends": list(backends),
        "at": last,
    }


def notify(events: list[m.Event]) -> None:
    """What a leader does once a step commits: one group message per step that changed
    something (`Leader(on_commit=...)`)."""
    if not events:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        message = {"type": MESSAGE_TYPE, "id": uuid.uuid4().hex, **changes(events)}
        async_to_sync(layer.group_send)(GROUP, message)
    except Exception:  # noqa: BLE001 - a lost notification must never fail the step
        log.exception("live notification failed")


def plan_published(*, held: Iterable[str] = ()) -> None:
    """What the leader does once a new plan is out (`Planner(on_publish=...)`): pages
    that show the plan render it again, and dashboards the cards of the backends whose
    count of jobs held back by allocations changed (`held`)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        message = {"type": MESSAGE_TYPE, "id": uuid.uuid4().hex, "plan": True, "held": list(held)}
        message |= {"jobs": [], "sessions": [], "backends": [], "at": None}
        async_to_sync(layer.group_send)(GROUP, message)
    except Exception:  # noqa: BLE001 - a lost notification must never fail the leader
        log.exception("live notification failed")
