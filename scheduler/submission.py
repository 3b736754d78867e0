"""Creating jobs and sessions: the writes behind the browser form, the API and demo traffic."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from scheduler import circuits, engine, limits, models, wakeup
from scheduler.clock import Clock, SystemClock, from_ticks, span_ticks
from scheduler.executor import modeled_duration
from scheduler.policy import model as m

User = AbstractBaseUser | AnonymousUser


TOO_MANY_QUEUED = "too_many_queued"


class SubmissionError(Exception):
    """A submission refused before it reached the scheduler; nothing was stored."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Submitted:
    """The result of a submission the scheduler accepted."""

    job: models.Job
    warnings: tuple[m.ReservationWarning, ...] = ()


REFUSALS = {
    m.UNKNOWN_BACKEND: "Unknown backend.",
    m.UNKNOWN_SESSION: "Unknown session.",
    m.BACKEND_MISMATCH: "The session runs on another backend.",
    m.INSTANCE_MISMATCH: "The session belongs to another instance.",
    m.SESSION_CLOSED: "The session is closed and accepts no more jobs.",
}


def new_uid() -> str:
    """A job or session id in the style of Qiskit Runtime's."""
    return "q" + secrets.token_hex(10)


def jobs_submit(
    *,
    owner: User | None,
    backend: models.Backend,
    instance: models.Instance,
    program_id: str,
    params: dict[str, Any],
    session_id: str | None = None,
    start_session: bool = False,
    session_mode: str = m.DEDICATED,
    max_execution_time: timedelta | None = None,
    tags: list[str] | None = None,
    uid: str | None = None,
    clock: Clock | None = None,
) -> Submitted:
    """Validate a primitive job, model its QPU time and queue it; refusals store nothing."""
    limit = settings.QDASH_MAX_QUEUED_PER_USER
    owner_id = getattr(owner, "pk", None)
    if owner_id is not None and (
        models.Job.objects.filter(owner_id=owner_id, status=m.QUEUED).count() >= limit
    ):
        raise SubmissionError(
            TOO_MANY_QUEUED, f"You have {limit} jobs queued; wait for some to run."
        )
    if program_id not in circuits.PROGRAMS:
        raise SubmissionError(
            "unknown_program", f"Unknown program {program_id!r}; use sampler or estimator."
        )
    try:
        inspection = limits.decode(circuits.inspect, program_id, params, limits.input_limits())
        circuits.check_width(inspection, backend.num_qubits)
    except circuits.CircuitError as error:
        raise SubmissionError("invalid_circuit", str(error)) from None
    expected = modeled_duration(
        overhead=backend.job_overhead, shot_time=backend.shot_time, executions=inspection.executions
    )
    uid = uid or new_uid()
    action = m.Submit(
        uid,
        instance.path,
        backend.name,
        None,
        session=uid if start_session else session_id,
        start_session=start_session,
        max_execution_time=span_ticks(max_execution_time),
        mode=session_mode,
        expected=span_ticks(expected),
    )
    result = engine.step(
        [action],
        at=(clock or SystemClock()).now(),
        job_fields={
            uid: {
                "owner_id": owner_id,
                "program_id": program_id,
                "params": params,
                "tags": list(tags or []),
            }
        },
        session_fields={uid: {"owner_id": owner_id}} if start_session else None,
    )
    outcome = result.outcomes[0]
    if not outcome.accepted:
        code = outcome.code or "refused"
        raise SubmissionError(code, REFUSALS.get(code, code))
    wakeup.wake()
    return Submitted(models.Job.objects.get(uid=uid), outcome.warnings)


def sessions_create(
    *,
    owner: User | None,
    backend: models.Backend,
    instance: models.Instance,
    mode: str = m.DEDICATED,
    max_ttl: timedelta | None = None,
    clock: Clock | None = None,
) -> tuple[models.Session, tuple[m.ReservationWarning, ...]]:
    """Open a session (the client's `with Session(...)`); it starts with its first job."""
    uid = new_uid()
    result = engine.step(
        [m.CreateSession(uid, instance.path, backend.name, span_ticks(max_ttl), mode)],
        at=(clock or SystemClock()).now(),
        session_fields={uid: {"owner_id": getattr(owner, "pk", None)}},
    )
    outcome = result.outcomes[0]
    if not outcome.accepted:
        raise SubmissionError(
            outcome.code or "refused", REFUSALS.get(outcome.code or "", "Refused.")
        )
    wakeup.wake()
    return models.Session.objects.get(uid=uid), outcome.warnings


def warning_text(warning: m.ReservationWarning) -> str:
    """The reservation warning of a new session, in words."""
    start, end = from_ticks(warning.start), from_ticks(warning.end)
    when = "is in its window" if warning.in_window else f"opens at {start:%Y-%m-%d %H:%M} UTC"
    return (
        f"A reservation of this instance on this backend {when} (until {end:%H:%M} UTC). "
        "A session active in the window is bound to it: when the window ends the session "
        "closes and its queued jobs fail."
    )
