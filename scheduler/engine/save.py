"""Saving: what a step changed, written in bulk inside the step's transaction.

Every write of an existing row is conditional on what the leader last wrote
(`Written`), so two processes that both believe they lead cannot both start a
job: a row that changed under the leader raises `Conflict`, and the step is
rolled back. The column lists say which columns each kind of row takes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from scheduler import bulk, models
from scheduler.clock import TICK, from_ticks, maybe_from_ticks, ticks_span
from scheduler.engine.rows import Sample, Written
from scheduler.policy import LANES, Policy, lane_depths, waiting_lane
from scheduler.policy import model as m

SAMPLE_SPAN = timedelta(seconds=5)  # a new queue sample row at most this often per backend
SAMPLE_TICKS = SAMPLE_SPAN // TICK
# A submission or session creation the rules refused: its job or session, when, why.
Refusal = tuple[models.Job | models.Session, int, str]
REFUSALS = ("job_refused", "session_refused")  # the policy's events of refusals

EVENT_FIELDS = ["at", "kind", "detail", "job_id", "session_id", "backend_id", "reservation_id"]
SESSION_FIELDS = [
    "state",
    "accepting_jobs",
    "created_at",
    "max_ttl",
    "ttl_deadline",
    "interactive_deadline",
    "open_deadline",
    "bound_reservation",
    "closed_reason",
]
SESSION_NEW = ["uid", "backend_id", "instance_id", "mode", "interactive_ttl", *SESSION_FIELDS]
JOB_FIELDS = ["status", "lane", "error", "submitted_at", "started_at", "ended_at", "runtime_limit"]
JOB_NEW = [
    "uid",
    "backend_id",
    "instance_id",
    "session_id",
    "duration",
    "expected_duration",
    "max_execution_time",
    *JOB_FIELDS,
]
SAMPLE_FIELDS = [
    "at",
    "reservation",
    "session",
    "fair_share",
    "entered_reservation",
    "entered_session",
    "entered_fair_share",
    "started_reservation",
    "started_session",
    "started_fair_share",
]


class Conflict(Exception):
    """A row changed under the leader; the step is rolled back and the state reloaded."""


def save(
    written: Written,
    policy: Policy,
    instant: m.Instant,
    refused: list[Refusal],
    job_fields: Mapping[str, dict[str, Any]],
    session_fields: Mapping[str, dict[str, Any]],
    now: int,
) -> set[str]:
    """Write every entity the events name, the refusals, the charges, the log and
    the queue samples. Returns the backends that changed."""
    touched: dict[type, dict[Any, None]] = {
        kind: {} for kind in (m.Job, m.Session, m.Backend, m.Reservation)
    }
    for event in instant.events:
        kind = touched.get(type(event.subject))
        if kind is not None:  # shares and allocations change no row of the leader's
            kind[event.subject] = None
    _save_sessions(written, list(touched[m.Session]), session_fields)
    _save_jobs(written, list(touched[m.Job]), job_fields)
    backends = dict(touched[m.Backend])
    backends.update(
        (e.subject, None) for e in instant.events if e.kind in ("hold_started", "hold_ended")
    )
    _save_backends(written, list(backends))
    _save_reservations(written, list(touched[m.Reservation]))
    _save_refused(refused)
    _save_charges(written, instant.charges)
    _save_log(written, instant.events, refused)
    changed = {job.backend for job in touched[m.Job]}
    changed |= {session.backend for session in touched[m.Session]}
    changed |= {backend.name for backend in backends}
    changed |= {reservation.backend for reservation in touched[m.Reservation]}
    changed |= {row.backend.name for row, _, _ in refused}
    _save_samples(written, policy, instant.events, changed, now)
    return changed


def _save_sessions(
    written: Written, sessions: list[m.Session], extra: Mapping[str, dict[str, Any]]
) -> None:
    new = [s for s in sessions if s.id not in written.sessions]
    created = {s.id for s in new}
    names, more = _with_extra(models.Session, SESSION_NEW, [extra.get(s.id, {}) for s in new])
    keys = bulk.insert(
        models.Session,
        names,
        [
            (
                s.id,
                written.backends[s.backend],
                written.instance_pk(s.instance),
                s.mode,
                ticks_span(s.interactive_ttl),
                *session_values(s),
                *values,
            )
            for s, values in zip(new, more, strict=True)
        ],
    )
    for session, pk in zip(new, keys, strict=True):
        written.sessions[session.id] = (pk, session.state, session.accepting_jobs)
    groups: dict[tuple[str, bool], list[m.Session]] = defaultdict(list)
    for s in sessions:
        if s.id not in created:
            _, state, accepting = written.sessions[s.id]
            groups[state, accepting].append(s)
    for (state, accepting), group in groups.items():
        count = bulk.update(
            models.Session,
            SESSION_FIELDS,
            [(written.sessions[s.id][0], session_values(s)) for s in group],
            where={"state": state, "accepting_jobs": accepting},
        )
        if count != len(group):
            raise Conflict(f"{len(group) - count} session(s) changed under the leader")
        for s in group:
            written.sessions[s.id] = (written.sessions[s.id][0], s.state, s.accepting_jobs)


def _save_jobs(written: Written, jobs: list[m.Job], extra: Mapping[str, dict[str, Any]]) -> None:
    new = [j for j in jobs if j.id not in written.jobs]
    created = {j.id for j in new}
    names, more = _with_extra(models.Job, JOB_NEW, [extra.get(j.id, {}) for j in new])
    keys = bulk.insert(
        models.Job,
        names,
        [
            (
                j.id,
                written.backends[j.backend],
                written.instance_pk(j.instance),
                written.sessions[j.session.id][0] if j.session is not None else None,
                ticks_span(j.duration),
                ticks_span(j.expected),
                ticks_span(j.max_execution_time),
                *job_values(j),
                *values,
            )
            for j, values in zip(new, more, strict=True)
        ],
    )
    for job, pk in zip(new, keys, strict=True):
        written.jobs[job.id] = (pk, job.status)
    groups: dict[str, list[m.Job]] = defaultdict(list)
    for j in jobs:
        if j.id not in created:
            groups[written.jobs[j.id][1]].append(j)
    for status, group in groups.items():
        count = bulk.update(
            models.Job,
            JOB_FIELDS,
            [(written.jobs[j.id][0], job_values(j)) for j in group],
            where={"status": status},
        )
        if count != len(group):
            raise Conflict(f"{len(group) - count} job(s) changed under the leader")
    for j in jobs:
        written.jobs[j.id] = (written.jobs[j.id][0], j.status)


def _save_backends(written: Written, backends: list[m.Backend]) -> None:
    bulk.update(
        models.Backend,
        ["status", "hold_session", "hold_since"],
        [
            (
                written.backends[b.name],
                (
                    b.status,
                    written.sessions[b.hold_session.id][0] if b.hold_session else None,
                    maybe_from_ticks(b.hold_since),
                ),
            )
            for b in backends
        ],
    )


def _save_reservations(written: Written, reservations: list[m.Reservation]) -> None:
    # Rows an operator deleted meanwhile are simply not there.
    bulk.update(
        models.Reservation,
        ["started", "ended"],
        [(int(r.id), (r.started, r.ended)) for r in reservations if _stored(written, r)],
    )


def _stored(written: Written, reservation: m.Reservation) -> bool:
    """Whether the reservation's row is still there to name."""
    return not reservation.removed and reservation.id not in written.gone


def _save_refused(refused: list[Refusal]) -> None:
    """A submission its web process accepted but the rules refuse (it raced a
    closing session, or an allocation used up meanwhile) fails clearly, with the
    refusal's code; a session whose creation they refuse closes with it."""
    for row, at, code in refused:
        if isinstance(row, models.Session):
            count = models.Session.objects.filter(pk=row.pk, state=m.OPEN).update(
                state=m.CLOSED, accepting_jobs=False, closed_reason=code, open_deadline=None
            )
        else:
            count = models.Job.objects.filter(pk=row.pk, status=m.QUEUED).update(
                status=m.FAILED, error=code, ended_at=from_ticks(at)
            )
        if count != 1:
            raise Conflict(f"{row.uid} changed under the leader")


def _save_charges(written: Written, charges: list[m.Charge]) -> None:
    run, hold = models.UsageCharge.Kind.RUN, models.UsageCharge.Kind.HOLD
    bulk.insert(
        models.UsageCharge,
        ["instance_id", "kind", "microseconds", "ended_at", "job_id", "session_id"],
        [
            (
                written.instance_pk(c.instance),
                run if isinstance(c.source, m.Job) else hold,
                c.amount,
                from_ticks(c.end),
                written.jobs[c.source.id][0] if isinstance(c.source, m.Job) else None,
                written.sessions[c.source.id][0] if isinstance(c.source, m.Session) else None,
            )
            for c in charges
        ],
    )


def _save_log(written: Written, events: Sequence[m.Event], refused: list[Refusal]) -> None:
    rows = []
    stored = {(type(row), row.uid): row for row, _, _ in refused}
    for event in events:
        subject = event.subject
        job = session = reservation = None
        if event.kind in REFUSALS:  # names the rows a web process stored, if any
            refusal = _refusal_row(event, stored)
            if refusal is not None:
                rows.append(refusal)
            continue
        if isinstance(subject, m.Job):
            job = written.jobs[subject.id][0]
            if subject.session is not None:
                session = written.sessions[subject.session.id][0]
            backend = written.backends[subject.backend]
        elif isinstance(subject, m.Session):
            session = written.sessions[subject.id][0]
            backend = written.backends[subject.backend]
        elif isinstance(subject, m.Backend):
            backend = written.backends[subject.name]
        elif isinstance(subject, m.Reservation):
            reservation = int(subject.id) if _stored(written, subject) else None
            backend = written.backends[subject.backend]
        else:  # a share or an allocation: the detail names the node
            backend = None
        rows.append(
            (from_ticks(event.at), event.kind, event.detail, job, session, backend, reservation)
        )
    bulk.insert(models.Event, EVENT_FIELDS, rows)


def _refusal_row(
    event: m.Event, stored: dict[tuple[type, str], models.Job | models.Session]
) -> tuple[Any, ...] | None:
    """The log row of a refused submission or session creation, naming its stored row
    (a refusal of what no web process stored, a simulation's, has none)."""
    at, detail = from_ticks(event.at), {"error": event.detail["error"]}
    if event.kind == "session_refused":
        session = stored.get((models.Session, event.detail["session"]))
        if session is None:
            return None
        return (at, event.kind, detail, None, session.pk, session.backend_id, None)
    job = stored.get((models.Job, event.detail["job"]))
    if not isinstance(job, models.Job):
        return None
    return (at, event.kind, detail, job.pk, job.session_id, job.backend_id, None)


def _save_samples(
    written: Written, policy: Policy, events: Sequence[m.Event], changed: set[str], now: int
) -> None:
    """Each changed backend's lanes: the newest sample updated, or a new one when
    the newest is older than SAMPLE_SPAN."""
    samples = written.samples
    for event in events:
        if event.kind not in ("job_submitted", "job_started"):
            continue
        job = event.subject
        sample = samples.setdefault(job.backend, Sample())
        if event.kind == "job_started":
            sample.started[LANES.index(event.detail["lane"])] += 1
        else:
            lane = job.lane or waiting_lane(policy.backends[job.backend], job)
            sample.entered[LANES.index(lane)] += 1
    new: list[tuple[Sample, tuple[Any, ...]]] = []
    updated = []
    at = from_ticks(now)
    for name in sorted(changed):
        if name not in policy.backends:
            continue
        sample = samples.setdefault(name, Sample())
        depths = lane_depths(policy, name)
        sample.depths = (depths[m.RESERVATION], depths[m.SESSION], depths[m.FAIR_SHARE])
        values = (at, *sample.depths, *sample.entered, *sample.started)
        if sample.pk is None or now - sample.at >= SAMPLE_TICKS:
            new.append((sample, (written.backends[name], *values)))
            sample.at = now
        else:
            updated.append((sample.pk, values))
    keys = bulk.insert(models.QueueSample, ["backend_id", *SAMPLE_FIELDS], [r for _, r in new])
    for (sample, _), pk in zip(new, keys, strict=True):
        sample.pk = pk
    bulk.update(models.QueueSample, SAMPLE_FIELDS, updated)


def session_values(session: m.Session) -> tuple[Any, ...]:
    """A session's SESSION_FIELDS, in order."""
    return (
        session.state,
        session.accepting_jobs,
        from_ticks(session.created_at),
        ticks_span(session.max_ttl),
        maybe_from_ticks(session.ttl_deadline),
        maybe_from_ticks(session.interactive_deadline),
        maybe_from_ticks(session.open_deadline),
        int(session.bound_reservation) if session.bound_reservation else None,
        session.closed_reason or "",
    )


def job_values(job: m.Job) -> tuple[Any, ...]:
    """A job's JOB_FIELDS, in order."""
    return (
        job.status,
        job.lane or "",
        job.error or "",
        from_ticks(job.submitted_at),
        maybe_from_ticks(job.started_at),
        maybe_from_ticks(job.ended_at),
        ticks_span(job.limit),
    )


def _with_extra(
    model: type[Any], names: list[str], extra: list[dict[str, Any]]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The columns of new rows plus those some rows give (the others get the default)."""
    keys = sorted({key for fields in extra for key in fields})
    defaults = {
        key: model._meta.get_field(key.removesuffix("_id")).get_default()
        if key.endswith("_id") and key != "program_id"
        else model._meta.get_field(key).get_default()
        for key in keys
    }
    return [*names, *keys], [tuple(fields.get(k, defaults[k]) for k in keys) for fields in extra]
