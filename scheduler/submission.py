"""Creating jobs and sessions: the writes behind the browser form, the API and demo traffic."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import connection, transaction

from scheduler import circuits, inputs, limits, models, wakeup
from scheduler.clock import Clock, SystemClock, from_ticks, span_ticks, ticks_span, to_ticks
from scheduler.devices import DeviceUnavailable, checks, timing
from scheduler.devices.device import device_of
from scheduler.policy import model as m
from scheduler.policy import reservation_warnings, timers
from scheduler.rule_settings import deployment_settings
from scheduler.selectors.allocations import refusal_text, refusing

User = AbstractBaseUser | AnonymousUser
Kind = models.Input.Kind


TOO_MANY_QUEUED = "too_many_queued"
TOO_MANY_SESSIONS = "too_many_sessions"
TOO_MANY_DECODES = "too_many_decodes"


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
    private: bool = False,
    uid: str | None = None,
    clock: Clock | None = None,
) -> Submitted:
    """Validate a primitive job, model its QPU time and queue it for the leader.

    Refusals are answered here, in the order of the rules, and store nothing. The
    job is stored `Queued` with its input in one short transaction (on PostgreSQL, a
    job outside any session in one statement, wake-up included); the leader
    applies it (and, if it raced a session that closed meanwhile, fails it with
    `session_closed`).
    """
    owner_id = getattr(owner, "pk", None)
    checked = _check(owner_id, backend, program_id, params, tags, start_session)
    uid = uid or new_uid()
    now = (clock or SystemClock()).now()
    fields = dict(
        uid=uid,
        backend=backend,
        instance=instance,
        owner_id=owner_id,
        program_id=program_id,
        params=params,
        tags=list(tags or []),
        private=private,
        submitted_at=now,
        max_execution_time=max_execution_time,
    )
    if session_id is None and not start_session and connection.vendor == "postgresql":
        return _submit_alone(checked, fields, now)
    with transaction.atomic():
        joined = None
        if session_id is not None and not start_session:
            joined = _joinable(session_id, backend, instance)
        _check_allocation(instance, now)
        if start_session:
            session: models.Session | None = session_row(
                uid=uid,
                owner_id=owner_id,
                backend=backend,
                instance=instance,
                mode=session_mode,
                max_ttl=None,
                at=now,
            )
        else:
            session = joined
        modeled = _modeled(backend, checked, session)
        job = models.Job.objects.create(session=session, **fields, **modeled)
        inputs.record(Kind.SUBMIT, at=now, job=job, session=session if start_session else None)
    wakeup.wake(at=now)
    warnings = (
        _warnings(backend, instance, now, _max_ttl(max_execution_time)) if start_session else ()
    )
    return Submitted(job, warnings)


def _modeled(
    backend: models.Backend, checked: checks.Checked, session: models.Session | None
) -> dict[str, Any]:
    """The job's modeled QPU time, fixed now, from the session's cache at this moment
    (scheduler.devices.timing)."""
    modeled = timing.job_timing(
        backend=backend, runs=checked.runs, cached_keys=timing.session_cache(session)
    )
    return {
        "expected_duration": modeled.duration,
        "circuit_keys": modeled.keys,
        "cached_circuits": modeled.cached,
        "cache_saved": modeled.saved,
    }


def _submit_alone(checked: checks.Checked, fields: dict[str, Any], now: datetime) -> Submitted:
    """A job outside any session, on PostgreSQL: the job, its input and the leader's
    wake-up in one statement (`inputs.submit_in_one_statement`), which is its own
    transaction."""
    _check_allocation(fields["instance"], now)
    job = models.Job(session=None, **fields, **_modeled(fields["backend"], checked, None))
    inputs.submit_in_one_statement(job, at=now, notify=wakeup.NOTIFY_CHANNEL)
    if getattr(settings, "QDASH_EAGER_LEADER", False):
        wakeup.wake(at=now)  # no leader process to notify: the step runs here
    return Submitted(job)


def _check(
    owner_id: int | None,
    backend: models.Backend,
    program_id: str,
    params: dict[str, Any],
    tags: list[str] | None,
    start_session: bool,
) -> checks.Checked:
    """The refusals a submission meets before anything is stored, in order; what its
    circuits hold when none applies."""
    limit = settings.QDASH_MAX_QUEUED_PER_USER
    if owner_id is not None and _queued_up_to(owner_id, limit) >= limit:
        raise SubmissionError(
            TOO_MANY_QUEUED, f"You have {limit} jobs queued; wait for some to run."
        )
    if program_id not in circuits.PROGRAMS:
        raise SubmissionError(
            "unknown_program",
            f"Unknown program {program_id!r}; use sampler, estimator or executor.",
        )
    tags_check(list(tags or []))
    if start_session:
        _check_open_sessions(owner_id)
    try:
        # The limits, then the device's instruction set (scheduler.devices.checks).
        device = device_of(backend)
        checked: checks.Checked = limits.decode(
            checks.inspect,
            program_id,
            params,
            limits.input_limits(),
            device,
            caller=f"user:{owner_id}",
            # A driver's device may change its calibration; a profile's never does.
            memo=device is None or not device.driver,
        )
        circuits.check_width(checked.inspection, backend.num_qubits)
    except circuits.CircuitError as error:
        raise SubmissionError("invalid_circuit", str(error)) from None
    except limits.DecodeBusy as busy:
        raise SubmissionError(TOO_MANY_DECODES, busy.message) from None
    except DeviceUnavailable as error:
        raise SubmissionError("backend_offline", f"{backend.name} is offline: {error}") from None
    return checked


# Counted up to the limit only, so the cost never grows with the user's queue; written
# out, as every submission sends it.
_JOBS = models.Job._meta.db_table
QUEUED_SQL = (
    f"SELECT count(*) FROM (SELECT 1 FROM {_JOBS} WHERE owner_id = %s AND status = %s LIMIT %s) q"
)


def _queued_up_to(owner_id: int, limit: int) -> int:
    """How many jobs `owner_id` has queued, counted up to `limit`."""
    with connection.cursor() as cursor:
        cursor.execute(QUEUED_SQL, [owner_id, m.QUEUED, limit])
        return int(cursor.fetchone()[0])


def tags_check(tags: list[str]) -> None:
    """Refuse more tags, or longer ones, than the deployment allows."""
    most, chars = settings.QDASH_MAX_TAGS, settings.QDASH_MAX_TAG_CHARS
    if len(tags) > most:
        raise SubmissionError("invalid_tags", f"{len(tags)} tags; at most {most} are allowed.")
    longest = max((len(tag) for tag in tags), default=0)
    if longest > chars:
        raise SubmissionError(
            "invalid_tags", f"A tag of {longest} characters; at most {chars} are allowed."
        )


def _check_open_sessions(owner_id: int | None) -> None:
    """A user may have QDASH_MAX_OPEN_SESSIONS_PER_USER sessions that are not closed."""
    limit = settings.QDASH_MAX_OPEN_SESSIONS_PER_USER
    live = models.Session.objects.filter(owner_id=owner_id).exclude(state=m.CLOSED)
    if owner_id is not None and live[:limit].count() >= limit:
        raise SubmissionError(
            TOO_MANY_SESSIONS, f"You have {limit} sessions open; close one first."
        )


def _check_allocation(instance: models.Instance, now: datetime) -> None:
    """Refused, last of all, when a `refuse` allocation on the instance's path is used
    up (docs/rules.md, "Allocations"): jobs already queued wait, nothing new is stored."""
    status = refusing(instance.path, now=now)
    if status is not None:
        raise SubmissionError(m.ALLOCATION_EXHAUSTED, refusal_text(status))


def _joinable(uid: str, backend: models.Backend, instance: models.Instance) -> models.Session:
    """The session a job joins, locked until the job is stored; refusals in the rules' order."""
    session = models.Session.objects.select_for_update().filter(uid=uid).first()
    code = None
    if session is None:
        code = m.UNKNOWN_SESSION
    elif session.backend_id != backend.pk:
        code = m.BACKEND_MISMATCH
    elif session.instance_id != instance.pk:
        code = m.INSTANCE_MISMATCH
    elif session.state == m.CLOSED or not session.accepting_jobs:
        code = m.SESSION_CLOSED
    if code is not None:
        raise SubmissionError(code, REFUSALS[code])
    assert session is not None
    return session


def session_row(
    *,
    uid: str,
    owner_id: int | None,
    backend: models.Backend,
    instance: models.Instance,
    mode: str,
    max_ttl: int | None,
    at: datetime,
) -> models.Session:
    """A session row as the leader will find it: `open`, with its timers' settings."""
    rules = deployment_settings()
    return models.Session.objects.create(
        uid=uid,
        backend=backend,
        instance=instance,
        owner_id=owner_id,
        mode=mode,
        created_at=at,
        interactive_ttl=ticks_span(timers.interactive_ttl(rules, mode)),
        max_ttl=ticks_span(timers.capped_max_ttl(rules, max_ttl)),
        open_deadline=from_ticks(timers.open_deadline(rules, to_ticks(at))),
    )


def _max_ttl(requested: timedelta | None) -> int:
    return timers.max_ttl(deployment_settings(), span_ticks(requested))


def _warnings(
    backend: models.Backend, instance: models.Instance, at: datetime, max_ttl: int
) -> tuple[m.ReservationWarning, ...]:
    """The reservations that may bind a session of `instance` created on `backend` now."""
    windows = models.Reservation.objects.filter(
        backend=backend, instance=instance, end__gt=at
    ).values_list("pk", "start", "end")
    return reservation_warnings(
        [
            m.Reservation(
                id=str(pk),
                backend=backend.name,
                instance=instance.path,
                start=to_ticks(start),
                end=to_ticks(end),
            )
            for pk, start, end in windows
        ],
        backend=backend.name,
        instance=instance.path,
        at=to_ticks(at),
        max_ttl=max_ttl,
    )


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
    _check_open_sessions(getattr(owner, "pk", None))
    now = (clock or SystemClock()).now()
    _check_allocation(instance, now)
    with transaction.atomic():
        session = session_row(
            uid=new_uid(),
            owner_id=getattr(owner, "pk", None),
            backend=backend,
            instance=instance,
            mode=mode,
            max_ttl=span_ticks(max_ttl),
            at=now,
        )
        inputs.record(Kind.CREATE_SESSION, at=now, session=session, max_ttl=span_ticks(max_ttl))
    wakeup.wake(at=now)
    return session, _warnings(backend, instance, now, _max_ttl(max_ttl))


def warning_text(warning: m.ReservationWarning) -> str:
    """The reservation warning of a new session, in words."""
    start, end = from_ticks(warning.start), from_ticks(warning.end)
    when = "is in its window" if warning.in_window else f"opens at {start:%Y-%m-%d %H:%M} UTC"
    return (
        f"A reservation of this instance on this backend {when} (until {end:%H:%M} UTC). "
        "A session active in the window is bound to it: when the window ends the session "
        "closes and its queued jobs fail."
    )
