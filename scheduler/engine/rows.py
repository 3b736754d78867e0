"""Stored rows as the policy's objects, and the leader's record of the rows it wrote.

Reading: a backend, reservation, session or job row becomes the object the rules
work on (times in ticks). Writing back is `save`'s: it keeps `Written`, the keys
of the rows the leader wrote and the values its next writes are conditional on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scheduler import models
from scheduler.clock import maybe_to_ticks, span_ticks, to_ticks
from scheduler.policy import model as m
from scheduler.services import instances_ensure

# The job columns the leader reads: never the inputs or results.
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


def backend_of(row: models.Backend) -> m.Backend:
    """The policy's view of a stored backend."""
    return m.Backend(name=row.name, status=row.status, max_runtime=span_ticks(row.max_runtime))


def reservation_of(row: models.Reservation) -> m.Reservation:
    """The policy's view of a stored reservation."""
    return m.Reservation(
        id=str(row.pk),
        backend=row.backend.name,
        instance=row.instance.path,
        start=to_ticks(row.start),
        end=to_ticks(row.end),
        exclusive=row.exclusive,
        started=row.started,
        ended=row.ended,
    )


def session_from_row(row: models.Session) -> m.Session:
    """The policy's view of a stored session."""
    return m.Session(
        id=row.uid,
        backend=row.backend.name,
        instance=row.instance.path,
        created_at=to_ticks(row.created_at),
        seq=row.pk,
        interactive_ttl=span_ticks(row.interactive_ttl) or 0,
        mode=row.mode,
        state=row.state,
        accepting_jobs=row.accepting_jobs,
        max_ttl=span_ticks(row.max_ttl),
        ttl_deadline=maybe_to_ticks(row.ttl_deadline),
        interactive_deadline=maybe_to_ticks(row.interactive_deadline),
        open_deadline=maybe_to_ticks(row.open_deadline),
        bound_reservation=str(row.bound_reservation_id) if row.bound_reservation_id else None,
        closed_reason=row.closed_reason or None,
    )


def job_from_row(row: models.Job, session: m.Session | None) -> m.Job:
    """The policy's view of a stored job (read with JOB_COLUMNS)."""
    job = m.Job(
        id=row.uid,
        instance=row.instance.path,
        backend=row.backend.name,
        submitted_at=to_ticks(row.submitted_at),
        seq=row.pk,
        duration=span_ticks(row.duration),
        max_execution_time=span_ticks(row.max_execution_time),
        session=session,
        status=row.status,
        lane=row.lane or None,
        started_at=maybe_to_ticks(row.started_at),
        ended_at=maybe_to_ticks(row.ended_at),
        error=row.error or None,
        limit=span_ticks(row.runtime_limit),
    )
    job.expected = span_ticks(row.expected_duration)
    return job


@dataclass
class Sample:
    """The newest queue sample of a backend, as written."""

    pk: int | None = None
    at: int = 0
    depths: tuple[int, int, int] = (0, 0, 0)
    entered: list[int] = field(default_factory=lambda: [0, 0, 0])
    started: list[int] = field(default_factory=lambda: [0, 0, 0])


@dataclass
class Written:
    """The rows as the leader last wrote them: their keys, and what its next writes of
    them are conditional on."""

    jobs: dict[str, tuple[int, str]] = field(default_factory=dict)  # uid -> (pk, status)
    # uid -> (pk, state, accepting jobs)
    sessions: dict[str, tuple[int, str, bool]] = field(default_factory=dict)
    backends: dict[str, int] = field(default_factory=dict)  # name -> pk
    instances: dict[str, int] = field(default_factory=dict)  # path -> pk
    samples: dict[str, Sample] = field(default_factory=dict)  # backend name -> its newest
    gone: set[str] = field(default_factory=set)  # reservations loaded whose row was deleted

    def instance_pk(self, path: str) -> int:
        """The key of the instance at `path`, created (with its ancestors) if missing."""
        pk = self.instances.get(path)
        if pk is None:
            pk = self.instances[path] = instances_ensure(path=path).pk
        return pk
