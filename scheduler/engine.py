"""One scheduling step against the database.

`step()` locks the scheduler, loads the live state into a `Policy`, lets it
apply the actions and everything due up to the instant, and writes back what
changed, all in one transaction. Every write of an existing row is conditional
on the state that was loaded, so a concurrent change aborts the step instead of
being overwritten, and a job can never be started twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from django.conf import settings as django_settings
from django.db import connection, transaction
from django.db.models import Max, Q, Sum

from scheduler import models
from scheduler.clock import (
    from_ticks,
    maybe_from_ticks,
    span_ticks,
    ticks_span,
    to_ticks,
)
from scheduler.policy import Policy
from scheduler.policy import model as m

LOCK_KEY = 0x71DA5  # PostgreSQL advisory lock serialising scheduler steps


class Conflict(Exception):
    """A row changed under the step; the step is rolled back and retried."""


def policy_settings() -> m.Settings:
    """The scheduling settings of this deployment, in ticks."""
    conf = django_settings.QDASH
    seconds = 1_000_000
    return m.Settings(
        interactive_ttl=round(conf["INTERACTIVE_TTL"] * seconds),
        batch_interactive_ttl=round(conf["BATCH_INTERACTIVE_TTL"] * seconds),
        system_max_ttl=round(conf["SYSTEM_MAX_TTL"] * seconds),
        open_timeout=round(conf["OPEN_TIMEOUT"] * seconds),
        usage_window=round(conf["USAGE_WINDOW"] * seconds),
        backend_max_runtime=round(conf["BACKEND_MAX_RUNTIME"] * seconds),
    )


@dataclass
class Snapshot:
    """The live state as loaded, with what each row looked like."""

    policy: Policy
    backends: dict[str, models.Backend]
    instances: dict[str, int]
    jobs: dict[str, tuple[int, str]] = field(default_factory=dict)  # uid -> (pk, status)
    sessions: dict[str, tuple[int, str, bool]] = field(default_factory=dict)


@dataclass
class StepResult:
    outcomes: list[m.Outcome]
    policy: Policy  # the state after the step, as written
    events: list[m.Event]


# Hooks called after a step commits, with its events (live updates, wake-ups).
after_commit: list[Callable[[list[m.Event]], None]] = []


def step(
    actions: Sequence[m.Action] = (),
    *,
    at: datetime,
    settings: m.Settings | None = None,
    job_fields: Mapping[str, dict[str, Any]] | None = None,
    session_fields: Mapping[str, dict[str, Any]] | None = None,
    attempts: int = 3,
) -> StepResult:
    """Apply `actions` at `at`, after everything due before it, in one transaction.

    `job_fields` and `session_fields` give the extra columns (owner, program,
    inputs) of jobs and sessions the actions create, by their id.
    """
    settings = settings or policy_settings()
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                _lock()
                snapshot = load(settings, to_ticks(at), _named_sessions(actions))
                outcomes = snapshot.policy.run_instant(to_ticks(at), actions)
                save(snapshot, job_fields or {}, session_fields or {})
                events = list(snapshot.policy.events)
                transaction.on_commit(partial(_notify, events))
            return StepResult(outcomes, snapshot.policy, events)
        except Conflict:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _named_sessions(actions: Sequence[m.Action]) -> set[str]:
    """Sessions the actions name: loaded even when closed, so refusals see them."""
    return {
        a.session
        for a in actions
        if isinstance(a, m.Submit | m.CloseSession | m.CancelSession) and a.session is not None
    }


def _notify(events: list[m.Event]) -> None:
    for hook in after_commit:
        hook(events)


def _lock() -> None:
    # SQLite transactions are IMMEDIATE (settings), which serialises writers already.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


# ----------------------------------------------------------------------- load
def load(settings: m.Settings, now: int, named_sessions: Iterable[str] = ()) -> Snapshot:
    """Build a policy from the rows that can still change."""
    policy = Policy(settings, record=True)
    backends = {b.name: b for b in models.Backend.objects.all()}
    for b in backends.values():
        policy.add_backend(m.Backend(b.name, b.status, span_ticks(b.max_runtime)))
    for r in models.Reservation.objects.filter(ended=False).select_related("backend", "instance"):
        policy.add_reservation(
            m.Reservation(
                str(r.pk),
                r.backend.name,
                r.instance.path,
                to_ticks(r.start),
                to_ticks(r.end),
                r.exclusive,
                r.started,
                r.ended,
            )
        )
    instances = dict(models.Instance.objects.values_list("path", "pk"))
    for path, share in models.Instance.objects.exclude(share=1.0).values_list("path", "share"):
        policy.set_share(path, share)
    policy.usage.load(
        (to_ticks(row["last"]), row["instance__path"], row["total"])
        for row in models.UsageCharge.objects.filter(
            ended_at__gt=from_ticks(now - settings.usage_window)
        )
        .values("instance__path")
        .annotate(total=Sum("microseconds"), last=Max("ended_at"))
    )
    snapshot = Snapshot(policy, backends, instances)
    job_rows = list(
        models.Job.objects.filter(status__in=[m.QUEUED, m.RUNNING])
        .select_related("backend", "instance")
        .only(*JOB_COLUMNS)  # never the inputs or results
    )
    # Sessions that can still change, those of running jobs (maybe closed already), and
    # those the actions name (a refusal needs to see a closed one).
    running_sessions = [r.session_id for r in job_rows if r.status == m.RUNNING and r.session_id]
    sessions = {}
    for row in models.Session.objects.filter(
        ~Q(state=models.Session.State.CLOSED)
        | Q(pk__in=running_sessions)
        | Q(uid__in=list(named_sessions))
    ).select_related("backend", "instance"):
        sessions[row.pk] = _session_from_row(row)
        snapshot.sessions[row.uid] = (row.pk, row.state, row.accepting_jobs)
    jobs = []
    for job_row in job_rows:
        jobs.append(job_from_row(job_row, sessions.get(job_row.session_id or 0)))
        snapshot.jobs[job_row.uid] = (job_row.pk, job_row.status)
    holds = {
        b.name: (sessions[b.hold_session_id].id, to_ticks(b.hold_since))
        for b in backends.values()
        if b.hold_session_id is not None
        and b.hold_since is not None
        and b.hold_session_id in sessions
    }
    policy.restore(sessions.values(), jobs, holds)
    return snapshot


def _session_from_row(row: models.Session) -> m.Session:
    return m.Session(
        row.uid,
        row.backend.name,
        row.instance.path,
        to_ticks(row.created_at),
        row.pk,
        span_ticks(row.interactive_ttl) or 0,
        row.mode,
        row.state,
        row.accepting_jobs,
        max_ttl=span_ticks(row.max_ttl),
        ttl_deadline=_ticks(row.ttl_deadline),
        interactive_deadline=_ticks(row.interactive_deadline),
        open_deadline=_ticks(row.open_deadline),
        bound_reservation=str(row.bound_reservation_id) if row.bound_reservation_id else None,
        closed_reason=row.closed_reason or None,
    )


JOB_COLUMNS = (
    "uid",
    "instance__path",
    "backend__name",
    "submitted_at",
    "duration",
    "max_execution_time",
    "session_id",
    "status",
    "lane",
    "started_at",
    "ended_at",
    "error",
    "runtime_limit",
    "expected_duration",
)


def job_from_row(row: models.Job, session: m.Session | None) -> m.Job:
    """The policy's view of a stored job."""
    job = m.Job(
        row.uid,
        row.instance.path,
        row.backend.name,
        to_ticks(row.submitted_at),
        row.pk,
        span_ticks(row.duration),
        span_ticks(row.max_execution_time),
        session,
        row.status,
        row.lane or None,
        _ticks(row.started_at),
        _ticks(row.ended_at),
        row.error or None,
        span_ticks(row.runtime_limit),
    )
    job.expected = span_ticks(row.expected_duration)
    return job


def _ticks(moment: datetime | None) -> int | None:
    return None if moment is None else to_ticks(moment)


# ----------------------------------------------------------------------- save
def save(
    snapshot: Snapshot,
    job_fields: Mapping[str, dict[str, Any]],
    session_fields: Mapping[str, dict[str, Any]],
) -> None:
    """Write back every entity the step's events name, then the charges and the log."""
    events = snapshot.policy.events
    touched: dict[type, dict[Any, None]] = {
        kind: {} for kind in (m.Job, m.Session, m.Backend, m.Reservation)
    }
    for event in events:
        touched[type(event.subject)][event.subject] = None
    session_pks = {uid: pk for uid, (pk, _, _) in snapshot.sessions.items()}
    for session in touched[m.Session]:
        session_pks[session.id] = _save_session(snapshot, session, session_fields)
    job_pks = {uid: pk for uid, (pk, _) in snapshot.jobs.items()}
    for job in touched[m.Job]:
        job_pks[job.id] = _save_job(snapshot, job, session_pks, job_fields)
    for backend in touched[m.Backend] | {b: None for b in _hold_changes(events)}:
        models.Backend.objects.filter(name=backend.name).update(
            status=backend.status,
            hold_session_id=session_pks[backend.hold_session.id] if backend.hold_session else None,
            hold_since=maybe_from_ticks(backend.hold_since),
        )
    for reservation in touched[m.Reservation]:
        models.Reservation.objects.filter(pk=int(reservation.id)).update(
            started=reservation.started, ended=reservation.ended
        )
    _save_charges(snapshot, job_pks, session_pks)
    _save_log(snapshot, events, job_pks, session_pks)


def _hold_changes(events: Iterable[m.Event]) -> list[m.Backend]:
    return [e.subject for e in events if e.kind in ("hold_started", "hold_ended")]


def _session_columns(session: m.Session) -> dict[str, Any]:
    return {
        "state": session.state,
        "accepting_jobs": session.accepting_jobs,
        "max_ttl": ticks_span(session.max_ttl),
        "ttl_deadline": maybe_from_ticks(session.ttl_deadline),
        "interactive_deadline": maybe_from_ticks(session.interactive_deadline),
        "open_deadline": maybe_from_ticks(session.open_deadline),
        "bound_reservation_id": int(session.bound_reservation)
        if session.bound_reservation
        else None,
        "closed_reason": session.closed_reason or "",
    }


def _save_session(
    snapshot: Snapshot, session: m.Session, extra: Mapping[str, dict[str, Any]]
) -> int:
    loaded = snapshot.sessions.get(session.id)
    if loaded is None:
        row = models.Session.objects.create(
            uid=session.id,
            backend=snapshot.backends[session.backend],
            instance_id=_instance_pk(snapshot, session.instance),
            mode=session.mode,
            created_at=from_ticks(session.created_at),
            interactive_ttl=ticks_span(session.interactive_ttl),
            **_session_columns(session),
            **extra.get(session.id, {}),
        )
        return row.pk
    pk, state, accepting = loaded
    changed = models.Session.objects.filter(pk=pk, state=state, accepting_jobs=accepting).update(
        **_session_columns(session)
    )
    if changed != 1:
        raise Conflict(f"session {session.id} changed")
    return pk


def _job_columns(job: m.Job) -> dict[str, Any]:
    return {
        "status": job.status,
        "lane": job.lane or "",
        "error": job.error or "",
        "started_at": maybe_from_ticks(job.started_at),
        "ended_at": maybe_from_ticks(job.ended_at),
        "runtime_limit": ticks_span(job.limit),
    }


def _save_job(
    snapshot: Snapshot,
    job: m.Job,
    session_pks: Mapping[str, int],
    extra: Mapping[str, dict[str, Any]],
) -> int:
    loaded = snapshot.jobs.get(job.id)
    if loaded is None:
        row = models.Job.objects.create(
            uid=job.id,
            backend=snapshot.backends[job.backend],
            instance_id=_instance_pk(snapshot, job.instance),
            session_id=session_pks[job.session.id] if job.session is not None else None,
            submitted_at=from_ticks(job.submitted_at),
            duration=ticks_span(job.duration),
            expected_duration=ticks_span(job.expected),
            max_execution_time=ticks_span(job.max_execution_time),
            **_job_columns(job),
            **extra.get(job.id, {}),
        )
        return row.pk
    pk, status = loaded
    if models.Job.objects.filter(pk=pk, status=status).update(**_job_columns(job)) != 1:
        raise Conflict(f"job {job.id} changed")
    return pk


def _instance_pk(snapshot: Snapshot, path: str) -> int:
    pk = snapshot.instances.get(path)
    if pk is None:
        pk = snapshot.instances[path] = instances_ensure(path=path).pk
    return pk


def instances_ensure(*, path: str) -> models.Instance:
    """The instance-tree node at `path`, created with its ancestors if missing."""
    parent = None
    node = None
    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        node, _ = models.Instance.objects.get_or_create(
            path="/".join(parts[:depth]), defaults={"parent": parent}
        )
        parent = node
    assert node is not None
    return node


def _save_charges(
    snapshot: Snapshot, job_pks: Mapping[str, int], session_pks: Mapping[str, int]
) -> None:
    new = snapshot.policy.usage.new or []
    models.UsageCharge.objects.bulk_create(
        [
            models.UsageCharge(
                instance_id=_instance_pk(snapshot, instance),
                kind=models.UsageCharge.Kind.RUN
                if isinstance(source, m.Job)
                else models.UsageCharge.Kind.HOLD,
                microseconds=amount,
                ended_at=from_ticks(end),
                job_id=job_pks.get(source.id) if isinstance(source, m.Job) else None,
                session_id=session_pks.get(source.id) if isinstance(source, m.Session) else None,
            )
            for end, instance, amount, source in new
        ]
    )


def _save_log(
    snapshot: Snapshot,
    events: Sequence[m.Event],
    job_pks: Mapping[str, int],
    session_pks: Mapping[str, int],
) -> None:
    rows = []
    for event in events:
        subject = event.subject
        row = models.Event(at=from_ticks(event.at), kind=event.kind, detail=event.detail)
        if isinstance(subject, m.Job):
            row.job_id = job_pks[subject.id]
            if subject.session is not None:
                row.session_id = session_pks[subject.session.id]
            row.backend_id = snapshot.backends[subject.backend].pk
        elif isinstance(subject, m.Session):
            row.session_id = session_pks[subject.id]
            row.backend_id = snapshot.backends[subject.backend].pk
        elif isinstance(subject, m.Backend):
            row.backend_id = snapshot.backends[subject.name].pk
        elif isinstance(subject, m.Reservation):
            row.reservation_id = int(subject.id)
            row.backend_id = snapshot.backends[subject.backend].pk
        rows.append(row)
    models.Event.objects.bulk_create(rows)
