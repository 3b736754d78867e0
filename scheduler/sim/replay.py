"""`manage.py replay`: does the pure policy, fed what the live system was fed, decide
what the live system decided? (docs/rules.md, "Replaying a live run").

`scenario_from_log` rebuilds a scenario (docs/simulate.md) from the database: the
backends, shares, prior usage and reservations, then every input the leader applied
as it is recorded in the event log (submissions, session creations, closes and
cancels, job cancels, backend pauses, reservation changes), each at the instant it
applied, in the order it applied, and each job's recorded run time. `live_trace`
reads the trace of what the live run did from the same rows, in the simulator's
format; `scheduler.sim.compare` compares the two event by event.

Times: the live clock is wall time with microsecond timestamps, the policy counts
microseconds, and scenario and trace times are seconds. Both traces count seconds
from the same origin (the first logged instant, truncated to the whole second), so
every time is a whole number of microseconds written exactly (at most six decimals)
and equal decisions compare equal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction

from scheduler import models
from scheduler.allocations import allocation_of, change_detail
from scheduler.clock import (
    TICKS_PER_SECOND,
    exact_seconds,
    from_ticks,
    seconds_ticks,
    span_ticks,
    to_ticks,
)
from scheduler.engine.rows import JOB_COLUMNS
from scheduler.policy import model as m
from scheduler.rule_settings import DEFAULTS, deployment_settings
from scheduler.sim.compare import Difference, first_difference
from scheduler.sim.traces import live_trace, replay_trace
from scheduler.snapshot import read_snapshot
from scheduler.usage import usage_in_window

# Errors the rules give a job that started; any other failure was reported by an executor.
RULE_FAILURES = frozenset({m.MAX_EXECUTION_TIME_EXCEEDED, m.SESSION_EXPIRED, m.RESERVATION_ENDED})


class ReplayError(ValueError):
    """The database holds no run that can be replayed; the message is one line."""


def _seconds(ticks: int, origin: int) -> int | float:
    """Ticks as scenario seconds since `origin`, checked to read back exactly."""
    seconds = exact_seconds(ticks - origin)
    assert seconds is not None and seconds_ticks(seconds) == ticks - origin, ticks
    return seconds


def _span(ticks: int | None) -> int | float | None:
    return None if ticks is None else _seconds(ticks, 0)


@dataclass(frozen=True)
class _Logged:
    """One scenario event with where it sorts: its instant, then the log's order."""

    at: int
    order: int
    event: dict[str, Any]


@dataclass(frozen=True)
class Replay:
    """A live run rebuilt, replayed and read back."""

    scenario: dict[str, Any]
    expected: dict[str, Any]  # the memory engine's trace of the scenario
    live: dict[str, Any]  # what the live system did

    @property
    def difference(self) -> Difference | None:
        return first_difference(self.expected, self.live)


def replay_live_run(
    settings: m.Settings | None = None, phase: Callable[[str], None] | None = None
) -> Replay:
    """Rebuild the scenario of the run the database holds and read its live trace
    from one snapshot, then replay the scenario with the memory engine. `phase(name)`
    hears each step as it begins."""
    say = phase or (lambda name: None)
    say("reading the event log")
    with read_snapshot():
        document = scenario_from_log(settings)
        live = live_trace(document)
    say(f"replaying {len(document.get('events', [])):,} events")
    return Replay(scenario=document, expected=replay_trace(document), live=live)


# ------------------------------------------------------------------ scenario
def scenario_from_log(settings: m.Settings | None = None) -> dict[str, Any]:
    """The scenario document of the run the database holds.

    `settings` are the scheduling settings the run used (the deployment's by
    default). Jobs and sessions whose input the leader has not applied yet are left
    out. Raises ReplayError when there is nothing to replay.
    """
    settings = settings or deployment_settings()
    with transaction.atomic():  # one snapshot of a run that may still be going on
        return _scenario(settings)


def _scenario(settings: m.Settings) -> dict[str, Any]:
    log = list(
        models.Event.objects.order_by("id").values_list(
            "id", "at", "kind", "detail", "job_id", "session_id", "backend_id", "reservation_id"
        )
    )
    if not log:
        raise ReplayError("the event log is empty: no live run to replay")
    first = min(to_ticks(row[1]) for row in log)
    horizon = max(to_ticks(row[1]) for row in log)
    axis = _Axis(first - first % TICKS_PER_SECOND)
    run = _Run.read()
    applied = _applied(log, run, axis)
    _check_complete(run, applied.submitted)
    events = _document_events(applied, run, axis)
    usage = _prior_usage(first, settings.usage_window)
    document = {
        "origin": from_ticks(axis.origin).isoformat(),
        "settings": {name: _span(getattr(settings, name)) for name in DEFAULTS},
        "backends": [
            {
                "name": b.name,
                "status": _opposite(applied.first_status[pk])
                if pk in applied.first_status
                else b.status,
                "max_runtime": _span(applied.first_limit.get(b.name, span_ticks(b.max_runtime))),
            }
            for pk, b in sorted(run.backends.items(), key=lambda item: item[1].name)
        ],
        "shares": _initial_shares(applied),
        "usage": {path: _span(used) for path, used in usage.items()},
        "reservations": _initial_reservations(applied, run, axis, first),
        "events": events,
        "until": axis.seconds(horizon),
    }
    allocations = _initial_allocations(applied, axis)
    if allocations:
        document["allocations"] = allocations
    return document


@dataclass(frozen=True)
class _Axis:
    """The scenario's time axis: seconds since `origin` (ticks, a whole second)."""

    origin: int

    def seconds(self, moment: datetime | int) -> int | float:
        return _seconds(moment if isinstance(moment, int) else to_ticks(moment), self.origin)


@dataclass(frozen=True)
class _Run:
    """The rows of the run the database holds, by key."""

    backends: dict[int, models.Backend]
    jobs: dict[int, models.Job]
    sessions: dict[int, models.Session]
    reservations: dict[int, models.Reservation]

    @classmethod
    def read(cls) -> _Run:
        jobs = models.Job.objects.select_related("backend", "instance", "session").only(
            *JOB_COLUMNS, "session__uid", "session__mode"
        )
        sessions = models.Session.objects.select_related("backend", "instance")
        reservations = models.Reservation.objects.select_related("backend", "instance")
        return cls(
            backends={row.pk: row for row in models.Backend.objects.all()},
            jobs={row.pk: row for row in jobs},
            sessions={row.pk: row for row in sessions},
            reservations={row.pk: row for row in reservations},
        )


@dataclass
class _Applied:
    """What the event log says the leader applied, as scenario events in the making, and
    what operators' changes replaced: the state before the first change of each thing."""

    events: list[_Logged] = field(default_factory=list)
    first_status: dict[int, str] = field(default_factory=dict)  # backend -> first logged
    fixed_ttl: set[int] = field(default_factory=set)  # sessions whose first job fixed it
    # reservation id -> its window before its first logged change (None: added in the run)
    first_window: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    first_share: dict[str, float] = field(default_factory=dict)  # node -> before
    first_limit: dict[str, int | None] = field(default_factory=dict)  # backend -> before
    first_allocation: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    submitted: set[int] = field(default_factory=set)  # jobs
    refused_sessions: set[int] = field(default_factory=set)  # creations the rules refused
    start_sessions: set[int] = field(default_factory=set)  # refused jobs that started one


def _applied(log: list[tuple[Any, ...]], run: _Run, axis: _Axis) -> _Applied:
    """Every input the log records, at the instant and in the order the leader applied it
    (submissions and session creations are filled in from their rows afterwards)."""
    applied = _Applied()
    events = applied.events
    for pk, at, kind, detail, job_id, session_id, backend_id, reservation_id in log:
        t = to_ticks(at)
        if kind == "backend_status" and backend_id is not None:
            applied.first_status.setdefault(backend_id, detail["status"])
            status = {"backend": run.backends[backend_id].name, "status": detail["status"]}
            events.append(_Logged(t, pk, {"backend_status": status}))
        elif kind == "session_max_ttl" and session_id is not None:
            applied.fixed_ttl.add(session_id)
        elif kind == "session_created" and session_id is not None:
            events.append(_Logged(t, pk, {"create_session": session_id}))
        elif kind == "session_closing" and session_id is not None:
            events.append(_Logged(t, pk, {"close_session": run.sessions[session_id].uid}))
        elif kind == "session_state" and session_id is not None:
            session = run.sessions[session_id]
            if detail.get("state") == m.CLOSED and session.closed_reason == m.CLOSED_CANCELLED:
                events.append(_Logged(t, pk, {"cancel_session": session.uid}))
        elif kind in ("job_submitted", "job_refused") and job_id is not None:
            applied.submitted.add(job_id)
            starts = _refused_start(events, t, session_id) if kind == "job_refused" else False
            if starts:  # its session was refused with it: a start_session submission
                applied.start_sessions.add(job_id)
            events.append(_Logged(t, pk, {"submit": job_id}))
        elif kind == "job_ended" and job_id is not None:
            job = run.jobs[job_id]
            if detail.get("status") == m.CANCELLED and not detail.get("error"):
                events.append(_Logged(t, pk, {"cancel_job": job.uid}))
        elif kind in ("reservation_changed", "reservation_removed"):
            window = _with_window(detail, reservation_id, run)
            if window is not None:
                removed = kind == "reservation_removed"
                _reservation_change(applied, _Logged(t, pk, {}), removed, window, axis)
        elif kind == "share_changed":
            applied.first_share.setdefault(detail["node"], detail["before"])
            share = {"node": detail["node"], "share": detail["share"]}
            events.append(_Logged(t, pk, {"set_share": share}))
        elif kind == "backend_changed" and backend_id is not None:
            name = run.backends[backend_id].name
            applied.first_limit.setdefault(name, detail["before"])
            limit = {"backend": name, "max_runtime": _span(detail["max_runtime"])}
            events.append(_Logged(t, pk, {"backend_max_runtime": limit}))
        elif kind == "allocation_changed":
            applied.first_allocation.setdefault(detail["node"], detail["before"])
            put = _allocation(detail, axis)
            events.append(_Logged(t, pk, {"put_allocation": put}))
        elif kind == "session_refused" and session_id is not None:
            applied.refused_sessions.add(session_id)
            events.append(_Logged(t, pk, {"create_session": session_id}))
    return applied


def _reservation_change(
    applied: _Applied, at: _Logged, removed: bool, window: dict[str, Any], axis: _Axis
) -> None:
    """A reservation added, changed or deleted (`removed`), as the log keeps it: its id,
    its window and what it replaced, whether or not its row is still there."""
    rid = str(window["id"])
    if removed:
        applied.first_window.setdefault(rid, window)
        applied.events.append(_Logged(at.at, at.order, {"remove_reservation": rid}))
        return
    before = window.get("before")
    applied.first_window.setdefault(rid, None if before is None else {**window, **before})
    put = _logged_window(rid, window, axis)
    applied.events.append(_Logged(at.at, at.order, {"put_reservation": put}))


def _with_window(
    detail: dict[str, Any], reservation_id: int | None, run: _Run
) -> dict[str, Any] | None:
    """A reservation event's detail with its id and whole window; a log written without
    them reads them from the row, when it is still there."""
    if "id" in detail:
        return detail
    if reservation_id not in run.reservations:
        return None
    r = run.reservations[reservation_id]
    return {
        "id": reservation_id,
        "backend": r.backend.name,
        "instance": r.instance.path,
        "exclusive": r.exclusive,
        "before": None,
        **detail,
    }


def _logged_window(rid: str, window: dict[str, Any], axis: _Axis) -> dict[str, Any]:
    """A reservation as the log keeps it (ticks), as the scenario names it."""
    return {
        "id": rid,
        "backend": window["backend"],
        "instance": window["instance"],
        "start": axis.seconds(window["start"]),
        "end": axis.seconds(window["end"]),
        "exclusive": window["exclusive"],
    }


def _refused_start(events: list[_Logged], t: int, session_id: int | None) -> bool:
    """Whether a refused job started the session refused just before it (at its instant):
    then it was one start_session submission, not a creation and a job."""
    last = events[-1] if events else None
    if session_id is None or last is None or last.at != t:
        return False
    if last.event.get("create_session") != session_id:
        return False
    events.pop()
    return True


def _initial_shares(applied: _Applied) -> dict[str, float]:
    """The shares when the log begins: today's, but what the first change replaced."""
    shares = dict(models.Instance.objects.order_by("path").values_list("path", "share"))
    shares.update(applied.first_share)
    return {path: share for path, share in sorted(shares.items()) if share != 1.0}


def _initial_reservations(
    applied: _Applied, run: _Run, axis: _Axis, first: int
) -> list[dict[str, Any]]:
    """The windows when the log begins: those the log never changes, as stored (unless
    they ended before it), and the others as their first logged change found them."""
    windows = [
        _window(r, r.start, r.end, axis)
        for pk, r in sorted(run.reservations.items())
        if str(pk) not in applied.first_window and not (r.ended and to_ticks(r.end) < first)
    ]
    windows += [
        _logged_window(rid, window, axis)
        for rid, window in sorted(applied.first_window.items())
        if window is not None
    ]
    return windows


def _initial_allocations(applied: _Applied, axis: _Axis) -> list[dict[str, Any]]:
    """The allocations when the log begins: today's, but what the first change replaced."""
    now: dict[str, dict[str, Any] | None] = {
        row.instance.path: {"node": row.instance.path, **change_detail(allocation_of(row))}
        for row in models.Allocation.objects.select_related("instance")
    }
    for node, before in applied.first_allocation.items():
        now[node] = before
    return [
        _allocation(detail, axis)
        for _, detail in sorted(now.items())
        if detail is not None and detail["seconds"] is not None
    ]


def _allocation(detail: dict[str, Any], axis: _Axis) -> dict[str, Any]:
    """An allocation as the log keeps it (ticks), as the scenario names it."""
    period = detail["period"]
    return {
        "instance": detail["node"],
        "seconds": None if detail["seconds"] is None else _span(detail["seconds"]),
        "enforce": detail["enforce"] or m.QUEUE,
        "period": None
        if period is None
        else {"start": axis.seconds(period[0]), "length": _span(period[1])},
    }


def _check_complete(run: _Run, submitted: set[int]) -> None:
    """Every job applied so far has its submission in the log."""
    missing = [
        row.uid for pk, row in run.jobs.items() if pk not in submitted and not _pending(row, "job")
    ]
    if missing:
        raise ReplayError(
            f"job {missing[0]} has no submission in the event log"
            " (the log must cover the run from its start)"
        )


def _document_events(applied: _Applied, run: _Run, axis: _Axis) -> list[dict[str, Any]]:
    """The scenario's events in time order, submissions and creations from their rows."""
    document = []
    for logged in sorted(applied.events, key=lambda e: (e.at, e.order)):
        event = dict(logged.event)
        if "create_session" in event:
            session = run.sessions[event["create_session"]]
            create: dict[str, Any] = {
                "session": session.uid,
                "instance": session.instance.path,
                "backend": session.backend.name,
                "mode": session.mode,
            }
            if session.pk not in applied.fixed_ttl and session.max_ttl is not None:
                create["max_ttl"] = _span(span_ticks(session.max_ttl))
            event["create_session"] = create
        elif "submit" in event:
            job = event["submit"]
            event["submit"] = _submission(run.jobs[job])
            if job in applied.start_sessions:
                event["submit"]["start_session"] = True
        document.append({"at": axis.seconds(logged.at), **event})
    return document


def _window(
    r: models.Reservation, start: datetime | int, end: datetime | int, axis: _Axis
) -> dict[str, Any]:
    """A reservation as the scenario names it, with the window `[start, end)`."""
    return {
        "id": str(r.pk),
        "backend": r.backend.name,
        "instance": r.instance.path,
        "start": axis.seconds(start),
        "end": axis.seconds(end),
        "exclusive": r.exclusive,
    }


def _opposite(status: str) -> str:
    return m.PAUSED if status == m.ONLINE else m.ONLINE


def _pending(row: models.Job | models.Session, field: str) -> bool:
    """Whether an input the leader has not applied yet stores this row."""
    return models.Input.objects.filter(**{field: row}).exists()


def _submission(job: models.Job) -> dict[str, Any]:
    """A job's submit event, with the run time its run recorded.

    A completed job runs for what it ran. A job that was running when it was
    cancelled or an executor failed it, one that ran into its runtime limit, and one
    still running get no run time (null: it runs until its cancel, its reported
    failure or its limit). A job that never started keeps its modeled run time.
    """
    duration: int | None
    fails = None
    if job.started_at is None:
        duration = span_ticks(job.duration if job.duration is not None else job.expected_duration)
    elif job.status == m.COMPLETED and job.ended_at is not None:
        duration = to_ticks(job.ended_at) - to_ticks(job.started_at)
    elif job.status == m.FAILED and job.ended_at is not None and job.error not in RULE_FAILURES:
        duration = to_ticks(job.ended_at) - to_ticks(job.started_at)
        fails = job.error or "failed"  # its executor reported the failure
    else:
        duration = None
    submit: dict[str, Any] = {
        "job": job.uid,
        "instance": job.instance.path,
        "backend": job.backend.name,
        "duration": _span(duration),
    }
    if job.session is not None:
        submit["session"] = job.session.uid
    if job.max_execution_time is not None:
        submit["max_execution_time"] = _span(span_ticks(job.max_execution_time))
    if fails is not None:
        submit["fails"] = fails
    expected = span_ticks(job.expected_duration)
    if expected is not None and expected != duration:  # what `safe` allocations count
        submit["expected"] = _span(expected)
    return submit


def _prior_usage(first: int, window: int) -> dict[str, int]:
    """Usage charged before the log begins and still inside the window then."""
    used = usage_in_window(after=from_ticks(first - window), before=from_ticks(first))
    return {path: u.total for path, u in used.items() if u.total}
