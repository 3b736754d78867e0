"""Jobs and sessions as the Qiskit Runtime API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Max, Min
from django.utils import timezone

from scheduler import models
from scheduler.api.auth import instance_crn
from scheduler.policy import model as m

MAX_TIME_REASON_CODE = 1305
# Why a job ended without completing, in words (by the error code the rules give it).
REASONS = {
    m.MAX_EXECUTION_TIME_EXCEEDED: "Job ran longer than maximum execution time.",
    m.SESSION_EXPIRED: "The session reached its maximum TTL before the job ran.",
    m.SESSION_CANCELLED: "The session was cancelled.",
    m.RESERVATION_ENDED: "The reservation window the session was bound to ended.",
    "execution_failed": "The job's circuits could not be executed.",
}


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def seconds(span: Any) -> int | None:
    return None if span is None else round(span.total_seconds())


def job_state(job: models.Job) -> dict[str, Any]:
    """`state` of a job; a run stopped at its time limit is Cancelled with code 1305."""
    if job.error == m.MAX_EXECUTION_TIME_EXCEEDED:
        return {
            "status": m.CANCELLED,
            "reason": REASONS[job.error],
            "reason_code": MAX_TIME_REASON_CODE,
        }
    if job.status == m.CANCELLED:
        return {"status": m.CANCELLED, "reason": REASONS.get(job.error, "Cancelled by the user.")}
    if job.status == m.FAILED:
        return {"status": m.FAILED, "reason": failure_text(job)}
    return {"status": job.status}


def failure_text(job: models.Job) -> str:
    """What a failed job's `/results` shows (the client raises it as the error)."""
    reason = REASONS.get(job.error, job.error or "The job failed.")
    return f"{reason} {job.error_message}".strip() if job.error_message else reason


def job_json(job: models.Job, *, with_params: bool = False) -> dict[str, Any]:
    state = job_state(job)
    return {
        "id": job.uid,
        "backend": job.backend.name,
        "session_id": job.session.uid if job.session_id and job.session else None,
        "instance": instance_crn(job.instance.path),
        "created": iso(job.submitted_at),
        "status": state["status"],
        "state": state,
        "program": {"id": job.program_id},
        "tags": list(job.tags or []),
        "cost": seconds(job.max_execution_time),
        "params": job.params if with_params and not job.private else None,
        "private": job.private,
        # The modeled QPU time, fixed at submission (the client's `usage_estimation`).
        "estimated_running_time_seconds": (
            None if job.expected_duration is None else job.expected_duration.total_seconds()
        ),
    }


def session_json(session: models.Session, warnings: list[str] | None = None) -> dict[str, Any]:
    runs = session.jobs.aggregate(
        first=Min("started_at"), last=Max("started_at"), done=Max("ended_at")
    )
    closed_at = _state_changed_at(session, m.CLOSED, last=True)
    started = runs["first"]
    end = closed_at or timezone.now()
    return {
        "id": session.uid,
        "backend_name": session.backend.name,
        "instance": instance_crn(session.instance.path),
        "mode": session.mode,
        "state": session.state,
        "accepting_jobs": session.accepting_jobs,
        "max_ttl": seconds(session.max_ttl),
        "interactive_ttl": seconds(session.interactive_ttl) or 0,
        "active_ttl": seconds(session.max_ttl),
        "elapsed_time": max(0.0, (end - started).total_seconds()) if started else 0.0,
        "created_at": iso(session.created_at),
        "started_at": iso(started),
        "activated_at": iso(_state_changed_at(session, m.ACTIVE, last=False)),
        "closed_at": iso(closed_at),
        "closed_reason": session.closed_reason or None,
        "last_job_started": iso(runs["last"]),
        "last_job_completed": iso(runs["done"]),
        "warnings": warnings or [],
    }


def _state_changed_at(session: models.Session, state: str, *, last: bool) -> datetime | None:
    events = models.Event.objects.filter(
        session=session, kind="session_state", detail__state=state
    ).order_by("-id" if last else "id")
    return events.values_list("at", flat=True).first()
