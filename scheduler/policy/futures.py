"""Two futures of one state: without and with an operator's proposed changes.

Each future replays a deep copy of the policy (the state is never changed, as
Kueue's what-if applies a change to a snapshot), from `now` to the horizon's
end, with the live rules: the changes are the same actions the live engine
applies (`PutReservation`, `RemoveReservation`, `SetShare`, `SetBackendStatus`,
`PutAllocation`), given at `now`. Queued jobs run for their modeled duration, a running job for
what is left of it (docs/what-if.md). Nothing is known about arrivals after
`now`: only the synthetic load the caller asks for arrives, the same jobs at
the same instants in both futures.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from . import model as m
from .core import Policy
from .plan import assume_modeled_durations

SYNTHETIC = "synthetic:"  # prefix of synthetic jobs' ids
MAX_ARRIVALS = 200_000  # synthetic jobs one scenario may bring, at most


@dataclass(frozen=True, slots=True)
class SetOverhead:
    """A backend's per-job overhead changes: jobs submitted afterwards take the new one.

    Not a policy action: the overhead is part of a job's modeled time, fixed when
    the job is submitted, so queued jobs keep theirs (as they do live).
    """

    backend: str
    overhead: int


Change = (
    m.PutReservation
    | m.RemoveReservation
    | m.SetShare
    | m.SetBackendStatus
    | m.PutAllocation
    | SetOverhead
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Load:
    """Synthetic arrivals: about `per_hour` jobs an hour of `instance` on `backend`
    (a Poisson process); each runs the backend's per-job overhead plus `work`."""

    backend: str
    instance: str
    per_hour: float
    work: int


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """Where both futures start and stop, and what is assumed to arrive meanwhile."""

    now: int
    end: int
    hour: int  # an hour in the caller's time unit (the rate of a load is per hour)
    loads: tuple[Load, ...] = ()
    overheads: Mapping[str, int] = field(default_factory=dict)  # per backend, today
    seed: int = 0


class Arrival(NamedTuple):
    at: int
    job: str
    backend: str
    instance: str
    work: int


def arrivals(scenario: Scenario) -> list[Arrival]:
    """The synthetic jobs, in arrival order: the same list for every call with one seed."""
    out: list[Arrival] = []
    for index, load in enumerate(scenario.loads):
        if load.per_hour <= 0:
            continue
        rng = random.Random(f"{scenario.seed}/{index}")
        mean_gap = scenario.hour / load.per_hour
        t = float(scenario.now)
        n = 0
        while True:
            t += rng.expovariate(1.0) * mean_gap
            at = round(t)
            if at > scenario.end:
                break
            n += 1
            if len(out) >= MAX_ARRIVALS:
                raise ValueError(f"the synthetic load brings more than {MAX_ARRIVALS} jobs")
            job = f"{SYNTHETIC}{index}:{n}"
            out.append(Arrival(at, job, load.backend, load.instance, load.work))
    out.sort(key=lambda a: (a.at, a.job))
    return out


class JobRun(NamedTuple):
    """One job of a future: a job queued or running at `now`, or a synthetic one."""

    id: str
    instance: str
    backend: str
    synthetic: bool
    submitted: int
    started: int | None
    ended: int | None  # when it reached a final state (None: still queued or running)
    end_due: int | None  # a job still running at the horizon's end: when it will end
    lane: str | None
    status: str
    error: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRun:
    """One session of a future that was not closed at `now`."""

    id: str
    instance: str
    backend: str
    state: str  # at `now`
    bound_before: str | None  # the reservation it was bound to at `now`
    bound: str | None  # the reservation it is bound to at the end (or was, when it closed)
    bound_at: int | None  # when it was (re-)activated inside that window, if during the future
    closed_at: int | None  # when it closed, if during the future
    closed_reason: str | None
    ttl_deadline: int | None  # when its max TTL runs out (None: not started)


class Window(NamedTuple):
    id: str
    instance: str
    start: int
    end: int
    exclusive: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendRun:
    """A backend over a future: its status, the session holds and the windows."""

    name: str
    status: str  # after the changes (nothing else pauses or resumes a backend)
    holds: list[tuple[int, int]]  # spans an idle active session held it, clipped to the future
    windows: list[Window]  # reservation windows overlapping the future


@dataclass(frozen=True, kw_only=True)
class Future:
    now: int
    end: int
    jobs: list[JobRun]
    sessions: list[SessionRun]
    backends: dict[str, BackendRun]
    reservations_before: dict[str, Window]  # the windows known at `now`, before any change


def compare(
    policy: Policy, scenario: Scenario, changes: Sequence[Change], *, in_place: bool = False
) -> tuple[Future, Future]:
    """Both futures of `policy`'s state: without and with `changes`.

    Each replays a copy, unless `in_place` (a throw-away snapshot, such as a
    freshly loaded one): then the future without the changes uses `policy` up,
    which saves one copy of the state.
    """
    arrived = arrivals(scenario)
    with_ = run_future(policy, scenario, changes, arrived)
    return run_future(policy, scenario, (), arrived, in_place=in_place), with_


class _Start(NamedTuple):
    """What the reports need of the state at `now`, kept before a replay moves it."""

    sessions: dict[str, tuple[str, str | None, int | None]]  # state, bound window, TTL end
    reservations: dict[str, Window]


def run_future(
    policy: Policy,
    scenario: Scenario,
    changes: Sequence[Change],
    arrived: Sequence[Arrival] | None = None,
    *,
    in_place: bool = False,
) -> Future:
    """Replay a copy of `policy` (or, `in_place`, `policy` itself) from `scenario.now` to
    `scenario.end` with `changes` applied at `now` and the synthetic jobs submitted as
    they arrive."""
    if arrived is None:
        arrived = arrivals(scenario)
    start = _Start(
        {
            s.id: (s.state, s.bound_reservation, s.ttl_deadline)
            for s in policy.sessions.values()
            if s.state != m.CLOSED  # a closed one is kept only while its last job runs
        },
        {r.id: _window(r) for r in policy.reservations.values()},
    )
    replay = policy if in_place else copy.deepcopy(policy)
    now, end = scenario.now, scenario.end
    assume_modeled_durations(replay, now)
    overheads = dict(scenario.overheads)
    actions: list[m.Action] = []
    for change in changes:
        if isinstance(change, SetOverhead):
            overheads[change.backend] = change.overhead
        else:
            actions.append(change)
    holds: list[tuple[str, int, int]] = []
    instant = replay.run_instant(max(now, replay.now or now), actions, log=False)
    _collect_holds(instant, holds)
    i, count = 0, len(arrived)
    while True:
        due = replay.next_due()
        t = arrived[i].at if i < count else None
        if due is not None and (t is None or due < t):
            t = due
        if t is None or t > end:
            break
        batch = []
        while i < count and arrived[i].at == t:
            a = arrived[i]
            duration = overheads.get(a.backend, 0) + a.work
            batch.append(
                m.Submit(job=a.job, instance=a.instance, backend=a.backend, duration=duration)
            )
            i += 1
        _collect_holds(replay.run_instant(t, batch, log=False), holds)
    return Future(
        now=now,
        end=end,
        jobs=_jobs(replay),
        sessions=_sessions(start, replay),
        backends=_backends(replay, holds, now, end),
        reservations_before=start.reservations,
    )


def _collect_holds(instant: m.Instant, holds: list[tuple[str, int, int]]) -> None:
    for charge in instant.charges:
        source = charge.source
        if isinstance(source, m.Session):
            holds.append((source.backend, charge.end - charge.amount, charge.end))


def _jobs(replay: Policy) -> list[JobRun]:
    return [
        JobRun(
            job.id,
            job.instance,
            job.backend,
            job.id.startswith(SYNTHETIC),
            job.submitted_at,
            job.started_at,
            job.ended_at,
            job.end_due,
            job.lane,
            job.status,
            job.error,
        )
        for job in replay.jobs.values()
    ]


def _sessions(start: _Start, replay: Policy) -> list[SessionRun]:
    out = []
    for sid, (state, bound_before, ttl_deadline) in start.sessions.items():
        session = replay.sessions[sid]
        closed = session.state == m.CLOSED
        bound_at = None
        window = replay.reservations.get(session.bound_reservation or "")
        if session.bound_reservation != bound_before and window is not None:
            bound_at = next(
                (
                    t
                    for t, seen in session.history
                    if seen == m.ACTIVE and window.start <= t < window.end
                ),
                None,
            )
        out.append(
            SessionRun(
                id=sid,
                instance=session.instance,
                backend=session.backend,
                state=state,
                bound_before=bound_before,
                bound=session.bound_reservation,
                bound_at=bound_at,
                closed_at=session.history[-1][0] if closed and session.history else None,
                closed_reason=session.closed_reason if closed else None,
                ttl_deadline=_ttl_deadline(ttl_deadline, session),
            )
        )
    return out


def _ttl_deadline(known: int | None, session: m.Session) -> int | None:
    """When the session's max TTL runs out: known at `now`, or set by its first start."""
    if known is not None:
        return known
    first = next((t for t, state in session.history if state == m.ACTIVE), None)
    if first is None or session.max_ttl is None:
        return None
    return first + session.max_ttl


def _window(r: m.Reservation) -> Window:
    return Window(r.id, r.instance, r.start, r.end, r.exclusive)


def _backends(
    replay: Policy, holds: list[tuple[str, int, int]], now: int, end: int
) -> dict[str, BackendRun]:
    spans: dict[str, list[tuple[int, int]]] = {name: [] for name in replay.backends}
    for name, start, stop in holds:
        if stop > now and start < end:
            spans[name].append((max(start, now), min(stop, end)))
    for name, backend in replay.backends.items():
        if backend.hold_since is not None and backend.hold_since < end:
            spans[name].append((max(backend.hold_since, now), end))
    windows: dict[str, list[Window]] = {name: [] for name in replay.backends}
    for r in replay.reservations.values():
        if r.start < end and r.end > now:
            windows[r.backend].append(_window(r))
    return {
        name: BackendRun(
            name=name,
            status=backend.status,
            holds=sorted(spans[name]),
            windows=sorted(windows[name], key=lambda w: w.start),
        )
        for name, backend in replay.backends.items()
    }


__all__ = [
    "Arrival",
    "BackendRun",
    "Change",
    "Future",
    "JobRun",
    "Load",
    "Scenario",
    "SessionRun",
    "SetOverhead",
    "Window",
    "arrivals",
    "compare",
    "run_future",
]
