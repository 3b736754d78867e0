"""`manage.py replay`: does the pure policy, fed what the live system was fed, decide
what the live system decided? (docs/rules.md, "Replaying a live run").

`scenario_from_log` rebuilds a scenario (docs/simulate.md) from the database: the
backends, shares, prior usage and reservations, then every input the leader applied
as it is recorded in the event log (submissions, session creations, closes and
cancels, job cancels, backend pauses, reservation changes), each at the instant it
applied, in the order it applied, and each job's recorded run time. `live_trace`
reads the trace of what the live run did from the same rows, in the simulator's
format; `first_difference` compares two traces event by event.

Times: the live clock is wall time with microsecond timestamps, the policy counts
microseconds, and scenario and trace times are seconds. Both traces count seconds
from the same origin (the first logged instant, truncated to the whole second), so
every time is a whole number of microseconds written exactly (at most six decimals)
and equal decisions compare equal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Sum

from scheduler import engine, models
from scheduler.clock import from_ticks, span_ticks, to_ticks
from scheduler.policy import model as m
from scheduler.simulation import (
    US,
    FinalState,
    MemoryEngine,
    parse_scenario,
    simulate,
    to_seconds,
    to_us,
    write_trace,
)
from scheduler.simulation_db import final_state_from_rows
from scheduler.snapshot import read_snapshot

# Errors the rules give a job that started; any other failure was reported by an executor.
RULE_FAILURES = frozenset({m.MAX_EXECUTION_TIME_EXCEEDED, m.SESSION_EXPIRED, m.RESERVATION_ENDED})


class ReplayError(ValueError):
    """The database holds no run that can be replayed; the message is one line."""


def _seconds(ticks: int, origin: int) -> int | float:
    """Ticks as scenario seconds since `origin`, checked to read back exactly."""
    seconds = to_seconds(ticks - origin)
    assert seconds is not None and to_us(seconds) == ticks - origin, ticks
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


def replay_live_run(settings: m.Settings | None = None) -> Replay:
    """Rebuild the scenario of the run the database holds and read its live trace
    from one snapshot, then replay the scenario with the memory engine."""
    with read_snapshot():
        document = scenario_from_log(settings)
        live = live_trace(document)
    return Replay(scenario=document, expected=replay_trace(document), live=live)


# ------------------------------------------------------------------ scenario
def scenario_from_log(settings: m.Settings | None = None) -> dict[str, Any]:
    """The scenario document of the run the database holds.

    `settings` are the scheduling settings the run used (the deployment's by
    default). Jobs and sessions whose input the leader has not applied yet are left
    out. Raises ReplayError when there is nothing to replay.
    """
    settings = settings or engine.policy_settings()
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
    origin = first - first % US

    def rel(moment: datetime | int) -> int | float:
        return _seconds(moment if isinstance(moment, int) else to_ticks(moment), origin)

    backends = {row.pk: row for row in models.Backend.objects.all()}
    jobs = {
        row.pk: row
        for row in models.Job.objects.select_related("backend", "instance", "session").only(
            *engine.JOB_COLUMNS, "session__uid", "session__mode"
        )
    }
    sessions = {row.pk: row for row in models.Session.objects.select_related("backend", "instance")}
    reservations = {
        row.pk: row for row in models.Reservation.objects.select_related("backend", "instance")
    }

    events: list[_Logged] = []
    first_status: dict[int, str] = {}
    fixed_ttl: set[int] = set()  # sessions whose max TTL their first job fixed
    changed_reservations: set[int] = set()
    submitted: set[int] = set()
    for pk, at, kind, detail, job_id, session_id, backend_id, reservation_id in log:
        t = to_ticks(at)
        if kind == "backend_status" and backend_id is not None:
            first_status.setdefault(backend_id, detail["status"])
            status = {"backend": backends[backend_id].name, "status": detail["status"]}
            events.append(_Logged(t, pk, {"backend_status": status}))
        elif kind == "session_max_ttl" and session_id is not None:
            fixed_ttl.add(session_id)
        elif kind == "session_created" and session_id is not None:
            events.append(_Logged(t, pk, {"create_session": session_id}))  # filled in below
        elif kind == "session_closing" and session_id is not None:
            events.append(_Logged(t, pk, {"close_session": sessions[session_id].uid}))
        elif kind == "session_state" and session_id is not None:
            session = sessions[session_id]
            if detail.get("state") == m.CLOSED and session.closed_reason == m.CLOSED_CANCELLED:
                events.append(_Logged(t, pk, {"cancel_session": session.uid}))
        elif kind in ("job_submitted", "job_refused") and job_id is not None:
            submitted.add(job_id)
            events.append(_Logged(t, pk, {"submit": job_id}))  # filled in below
        elif kind == "job_ended" and job_id is not None:
            job = jobs[job_id]
            if detail.get("status") == m.CANCELLED and not detail.get("error"):
                events.append(_Logged(t, pk, {"cancel_job": job.uid}))
        elif kind == "reservation_changed" and reservation_id in reservations:
            changed_reservations.add(reservation_id)
            r = reservations[reservation_id]
            window = {
                "id": str(r.pk),
                "backend": r.backend.name,
                "instance": r.instance.path,
                "start": rel(detail["start"]),
                "end": rel(detail["end"]),
                "exclusive": r.exclusive,
            }
            events.append(_Logged(t, pk, {"put_reservation": window}))

    missing = [
        row.uid for pk, row in jobs.items() if pk not in submitted and not _pending(row, "job")
    ]
    if missing:
        raise ReplayError(
            f"job {missing[0]} has no submission in the event log"
            " (the log must cover the run from its start)"
        )

    document_events = []
    for logged in sorted(events, key=lambda e: (e.at, e.order)):
        event = dict(logged.event)
        if "create_session" in event:
            session = sessions[event["create_session"]]
            create: dict[str, Any] = {
                "session": session.uid,
                "instance": session.instance.path,
                "backend": session.backend.name,
                "mode": session.mode,
            }
            if session.pk not in fixed_ttl and session.max_ttl is not None:
                create["max_ttl"] = _span(span_ticks(session.max_ttl))
            event["create_session"] = create
        elif "submit" in event:
            event["submit"] = _submission(jobs[event["submit"]])
        document_events.append({"at": rel(logged.at), **event})

    usage = _prior_usage(first, settings.usage_window)
    return {
        "origin": from_ticks(origin).isoformat(),
        "settings": {
            "interactive_ttl": _span(settings.interactive_ttl),
            "batch_interactive_ttl": _span(settings.batch_interactive_ttl),
            "system_max_ttl": _span(settings.system_max_ttl),
            "open_timeout": _span(settings.open_timeout),
            "usage_window": _span(settings.usage_window),
            "backend_max_runtime": _span(settings.backend_max_runtime),
        },
        "backends": [
            {
                "name": b.name,
                "status": _opposite(first_status[pk]) if pk in first_status else b.status,
                "max_runtime": _span(span_ticks(b.max_runtime)),
            }
            for pk, b in sorted(backends.items(), key=lambda item: item[1].name)
        ],
        "shares": dict(
            models.Instance.objects.exclude(share=1.0).order_by("path").values_list("path", "share")
        ),
        "usage": {path: _span(used) for path, used in usage.items()},
        "reservations": [
            {
                "id": str(r.pk),
                "backend": r.backend.name,
                "instance": r.instance.path,
                "start": rel(r.start),
                "end": rel(r.end),
                "exclusive": r.exclusive,
            }
            for pk, r in sorted(reservations.items())
            if pk not in changed_reservations and not (r.ended and to_ticks(r.end) < first)
        ],
        "events": document_events,
        "until": rel(horizon),
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
    return submit


def _prior_usage(first: int, window: int) -> dict[str, int]:
    """Usage charged before the log begins and still inside the window then."""
    rows = (
        models.UsageCharge.objects.filter(
            ended_at__lt=from_ticks(first), ended_at__gt=from_ticks(first - window)
        )
        .values("instance__path")
        .annotate(total=Sum("microseconds"))
        .order_by("instance__path")
        .values_list("instance__path", "total")
    )
    return {path: int(total) for path, total in rows if total}


# --------------------------------------------------------------------- traces
def live_trace(document: Mapping[str, Any]) -> dict[str, Any]:
    """What the live run did, in the trace format of docs/simulate.md, on the time
    axis of `document` (a scenario from `scenario_from_log`)."""
    scenario = parse_scenario(json.dumps(document))
    origin = to_ticks(datetime.fromisoformat(document["origin"]))
    assert scenario.until is not None
    end = origin + scenario.until
    with transaction.atomic():
        final = final_state_from_rows(end, scenario.settings.usage_window)
        refused = {
            uid: (to_ticks(at) - origin, None, detail.get("error") or m.SESSION_CLOSED)
            for uid, at, detail in models.Event.objects.filter(kind="job_refused").values_list(
                "job__uid", "at", "detail"
            )
        }
    named = {a.session for _, a in scenario.events if isinstance(a, m.CreateSession)}
    jobs = {}
    for uid, job in final.jobs.items():
        job.submitted_at -= origin
        job.started_at = None if job.started_at is None else job.started_at - origin
        job.ended_at = None if job.ended_at is None else job.ended_at - origin
        jobs[uid] = job
    sessions = {}
    for sid, session in final.sessions.items():
        if sid not in named:  # its creation is not applied yet
            continue
        session.created_at -= origin
        session.history = [(at - origin, state) for at, state in session.history]
        sessions[sid] = session
    starts = {
        name: [(at - origin, uid) for at, uid in started] for name, started in final.starts.items()
    }
    shifted = FinalState(jobs=jobs, sessions=sessions, starts=starts, usage=final.usage)
    return write_trace(scenario, shifted, refused, scenario.until)  # type: ignore[arg-type]


def replay_trace(document: Mapping[str, Any]) -> dict[str, Any]:
    """The memory engine's trace of `document`."""
    scenario = parse_scenario(json.dumps(document))
    return simulate(scenario, MemoryEngine(scenario))


# ---------------------------------------------------------------- comparison
KIND_ORDER = {"ended": 0, "submitted": 1, "rejected": 1, "session": 2, "started": 3}


def trace_events(trace: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """A trace as a list of events in time order: every job's submission (or refusal),
    start and end, every session state change; within an instant, by kind and name."""
    events: list[tuple[Any, ...]] = []
    for uid, job in trace["jobs"].items():
        if job["status"] == "Rejected":
            events.append((job["submitted_at"], "rejected", uid, job["error"]))
            continue
        events.append((job["submitted_at"], "submitted", uid, job["backend"], job["session"]))
        if job["started_at"] is not None:
            events.append((job["started_at"], "started", uid, job["backend"], job["lane"]))
        if job["ended_at"] is not None:
            events.append((job["ended_at"], "ended", uid, job["status"], job["error"]))
    for sid, session in trace["sessions"].items():
        history = session["history"]
        for n, (at, state) in enumerate(history):
            last = n == len(history) - 1 and state == m.CLOSED
            reason = session["closed_reason"] if last else None
            events.append((at, "session", sid, state, reason))
    events.sort(key=lambda e: (e[0], KIND_ORDER[e[1]], e[2], repr(e[3:])))
    return events


def describe(event: tuple[Any, ...] | None) -> str:
    """One event of `trace_events` in words."""
    if event is None:
        return "no further event"
    at, kind, name, *rest = event
    if kind == "rejected":
        return f"job {name} refused ({rest[0]}) at {at}"
    if kind == "submitted":
        backend, session = rest
        where = f" in session {session}" if session else ""
        return f"job {name} submitted to {backend}{where} at {at}"
    if kind == "started":
        return f"job {name} started on {rest[0]} from the {rest[1]} lane at {at}"
    if kind == "ended":
        status, error = rest
        return f"job {name} {status}{f' ({error})' if error else ''} at {at}"
    state, reason = rest
    return f"session {name} {state}{f' ({reason})' if reason else ''} at {at}"


@dataclass(frozen=True)
class Difference:
    """Where two traces first part: the event index, each side's event, and context."""

    index: int | None  # None: the event lists agree and a summary field differs
    expected: str
    live: str
    subject: str
    context: list[str]  # the events both agree on just before

    def __str__(self) -> str:
        where = f"event {self.index}" if self.index is not None else self.subject
        lines = [f"first difference at {where}:", f"  expected: {self.expected}"]
        lines.append(f"  live:     {self.live}")
        lines += [f"  after:    {line}" for line in self.context]
        return "\n".join(lines)


def first_difference(
    expected: Mapping[str, Any], live: Mapping[str, Any], *, context: int = 3
) -> Difference | None:
    """The first event at which trace `live` departs from trace `expected`, or None
    when they are equal."""
    a, b = trace_events(expected), trace_events(live)
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return _difference(i, x, y, a, context)
    if len(a) != len(b):
        i = min(len(a), len(b))
        return _difference(
            i, a[i] if i < len(a) else None, b[i] if i < len(b) else None, a, context
        )
    for key in ("jobs", "sessions", "starts", "usage", "end_time"):
        if expected.get(key) != live.get(key):
            return _summary_difference(key, expected.get(key), live.get(key))
    return None


def _difference(
    i: int,
    x: tuple[Any, ...] | None,
    y: tuple[Any, ...] | None,
    events: Sequence[tuple[Any, ...]],
    context: int,
) -> Difference:
    subject = " / ".join(
        dict.fromkeys(
            f"{'session' if e[1] == 'session' else 'job'} {e[2]}" for e in (x, y) if e is not None
        )
    )
    return Difference(
        index=i,
        expected=describe(x),
        live=describe(y),
        subject=subject,
        context=[describe(e) for e in events[max(0, i - context) : i]],
    )


def _summary_difference(key: str, x: Any, y: Any) -> Difference:
    if isinstance(x, dict) and isinstance(y, dict):
        for name in [*x, *(k for k in y if k not in x)]:
            if x.get(name) != y.get(name):
                return Difference(
                    None, repr(x.get(name)), repr(y.get(name)), f"{key} of {name}", []
                )
    return Difference(None, repr(x), repr(y), key, [])


def summary(trace: Mapping[str, Any]) -> str:
    return f"{len(trace['jobs'])} jobs, {len(trace['sessions'])} sessions"
