"""Answers about waiting jobs (docs/rules.md, "Queue position and estimated start").

- `waiting_lane`: the lane a queued job waits in now;
- `lane_depths`: how many queued jobs of a backend wait in each lane;
- `make_plan`: one replay of the rules from the current state, with nothing new
  arriving, giving every queued job its position, estimated start and the jobs
  ahead of it in its lane, plus each backend's situation;
- `wait_reasons`: why a job waits, as codes with data (the words belong to templates).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .core import Policy
from .model import (
    FAIR_SHARE,
    ONLINE,
    QUEUED,
    RESERVATION,
    RUNNING,
    SESSION,
    WAITING_STATES,
    Backend,
    Job,
)

LANES = (RESERVATION, SESSION, FAIR_SHARE)  # the order a free backend looks at them in
HEAD = 10  # jobs of each backend's head kept in the plan (the fair-share page's "next")


def waiting_lane(backend: Backend, job: Job) -> str:
    """The lane a queued `job` of `backend` waits in: its instance's open reservation
    window, else the backend's active session (if it is the job's), else fair share."""
    reservation = backend.reservation
    if reservation is not None and reservation.instance == job.instance:
        return RESERVATION
    if job.session is not None and job.session is backend.active_session:
        return SESSION
    return FAIR_SHARE


def lane_depths(policy: Policy, backend: str) -> dict[str, int]:
    """Queued jobs of `backend` per lane they wait in now (without scanning the queue)."""
    queues = policy.queues(backend)
    state = policy.backends[backend]
    reservation, active = state.reservation, state.active_session
    in_window = queues.count.get(reservation.instance, 0) if reservation is not None else 0
    session = active.queued_count if active is not None else 0
    depths = dict.fromkeys(LANES, 0)
    if reservation is not None and active is not None and active.instance == reservation.instance:
        depths[RESERVATION] = in_window + session
    else:
        depths[RESERVATION] = in_window
        depths[SESSION] = session
    depths[FAIR_SHARE] = queues.queued - depths[RESERVATION] - depths[SESSION]
    return depths


class PlanEntry(NamedTuple):
    """Where one queued job stands. `position` (1 = next) and `start` are None when
    the replay never starts it (a paused backend, a session that expires first).

    A named tuple: a plan holds one per queued job, and they are made by the thousand.
    """

    backend: str
    lane: str  # the lane it waits in now
    position: int | None
    start: int | None
    ahead: int  # queued jobs of its backend, waiting in its lane, that start before it
    allocation: Mapping[str, Any] | None = None  # what keeps it out of its lane now, if anything


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendState:
    """A backend's situation when the plan was made: what a waiting job waits for."""

    status: str
    running: dict[str, Any] | None  # job, lane, instance, session, expected end
    reservation: dict[str, Any] | None  # id, instance, end, exclusive (window open now)
    session: dict[str, Any] | None  # active session: id, instance, queued, holds, deadlines
    depths: dict[str, int]
    head: list[dict[str, Any]]  # the first jobs it starts: job, instance, session, start
    allocation_blocked: int = 0  # queued jobs that allocations keep out of the fair-share lane


@dataclass(frozen=True, kw_only=True)
class Plan:
    at: int
    entries: dict[str, PlanEntry] = field(default_factory=dict)
    backends: dict[str, BackendState] = field(default_factory=dict)


def make_plan(policy: Policy, now: int, *, in_place: bool = False) -> Plan:
    """Replay `policy` from `now` with nothing new arriving; every queued job's entry.

    The replay runs on a copy, unless `in_place` (a throw-away policy, such as a
    forked process's): then `policy` is used up.
    """
    start = max(now, policy.now) if policy.now is not None else now
    lanes = {
        job.id: (job.backend, waiting_lane(policy.backends[job.backend], job))
        for job in policy.jobs.values()
        if job.status == QUEUED
    }
    states = {name: _backend_state(policy, name) for name in policy.backends}
    replay = policy if in_place else copy.deepcopy(policy)
    blocked = _allocation_blocks(replay, lanes, start)
    assume_modeled_durations(replay, start)
    order: dict[str, list[tuple[int, str]]] = {name: [] for name in policy.backends}
    pending = len(lanes)
    t: int | None = start
    while t is not None and pending:
        for job in replay.run_instant(t, log=False).started:
            if job.id in lanes:
                order[job.backend].append((t, job.id))
                pending -= 1
        t = replay.next_due()
    entries: dict[str, PlanEntry] = {}
    queued: dict[str, dict[str, str]] = {name: {} for name in policy.backends}
    for uid, (backend, lane) in lanes.items():
        queued[backend][uid] = lane
    for backend, starts in order.items():
        entries.update(backend_entries(backend, starts, queued[backend], blocked))
        held = sum(1 for uid in blocked if lanes[uid][0] == backend)
        states[backend] = with_head(states[backend], head_of(policy, starts), held)
    return Plan(at=start, entries=entries, backends=states)


def backend_entries(
    backend: str,
    starts: list[tuple[int, str]],
    lanes: Mapping[str, str],
    blocked: Mapping[str, Mapping[str, Any]],
) -> dict[str, PlanEntry]:
    """The entries of `backend`'s queued jobs (`lanes`: the lane each waits in) from the
    order its replay started them in (`starts`: instant, job)."""
    entries: dict[str, PlanEntry] = {}
    ahead = dict.fromkeys(LANES, 0)
    for position, (at, uid) in enumerate(starts, 1):
        lane = lanes[uid]
        entries[uid] = PlanEntry(backend, lane, position, at, ahead[lane], blocked.get(uid))
        ahead[lane] += 1
    for uid, lane in lanes.items():
        if uid not in entries:
            # never started by the replay: every starter of its lane is ahead
            entries[uid] = PlanEntry(backend, lane, None, None, ahead[lane], blocked.get(uid))
    return entries


def head_of(policy: Policy, starts: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """The first jobs a backend starts (`starts`), as its state in the plan shows them."""
    return [
        {
            "job": uid,
            "instance": policy.jobs[uid].instance,
            "session": policy.jobs[uid].session_id,
        }
        | {"start": at}
        for at, uid in starts[:HEAD]
    ]


def _allocation_blocks(
    policy: Policy, lanes: Mapping[str, tuple[str, str]], at: int
) -> dict[str, Mapping[str, Any]]:
    """The fair-share jobs that allocations keep out of their lane at `at`, with why."""
    if not policy.allocations:
        return {}
    out: dict[str, Mapping[str, Any]] = {}
    for uid, (_, lane) in lanes.items():
        if lane == FAIR_SHARE:
            data = policy.allocation_block(policy.jobs[uid], at)
            if data is not None:
                out[uid] = data
    return out


def with_head(state: BackendState, head: list[dict[str, Any]], held: int) -> BackendState:
    return BackendState(
        status=state.status,
        running=state.running,
        reservation=state.reservation,
        session=state.session,
        depths=state.depths,
        head=head,
        allocation_blocked=held,
    )


def _backend_state(policy: Policy, name: str) -> BackendState:
    backend = policy.backends[name]
    running = backend.running
    reservation = backend.reservation
    active = backend.active_session
    return BackendState(
        status=backend.status,
        running=None
        if running is None
        else {
            "job": running.id,
            "lane": running.lane,
            "instance": running.instance,
            "session": running.session_id,
        },
        reservation=None
        if reservation is None
        else {
            "id": reservation.id,
            "instance": reservation.instance,
            "end": reservation.end,
            "exclusive": reservation.exclusive,
        },
        session=None
        if active is None
        else {
            "id": active.id,
            "instance": active.instance,
            "queued": active.queued_count,
            "accepting": active.accepting_jobs,
            "holds": backend.hold_session is active,
            "interactive_deadline": active.interactive_deadline,
        },
        depths=lane_depths(policy, name),
        head=[],
    )


def assume_modeled_durations(replay: Policy, now: int) -> None:
    """Jobs that run until reported finished take their modeled time in the replay."""
    for job in replay.jobs.values():
        if job.duration is not None or job.expected is None:
            continue
        if job.status == QUEUED:
            job.duration = job.expected
        elif job.status == RUNNING and job.started_at is not None:
            # Still running past its modeled end: assume it ends now.
            job.duration = max(job.expected, now - job.started_at)
            replay.reschedule_end(job)


# ------------------------------------------------------------------ reasons
@dataclass(frozen=True, slots=True)
class Reason:
    """Why a job waits: a code the templates put in words, and the data they show."""

    code: str
    data: Mapping[str, Any] = field(default_factory=dict)


def wait_reasons(
    state: BackendState,
    entry: PlanEntry,
    *,
    instance: str,
    session: str | None,
    session_state: str | None,
) -> list[Reason]:
    """Why a queued job of `instance` (maybe in `session`) waits, in the rules' terms.

    Codes: backend_paused, backend_busy, allocation_exhausted (the node, what it
    consumed, its `seconds`, the time the job `needs` of it and when it `frees`, in
    the policy's unit), reserved_for_other, session_lane_busy, backend_held,
    session_waiting, and `<lane>_ahead` (reservation_ahead, session_ahead,
    fair_share_ahead) with the count. An empty list: it is next.
    """
    reasons = []
    if state.status != ONLINE:
        reasons.append(Reason("backend_paused"))
    if state.running is not None:
        reasons.append(Reason("backend_busy", state.running))
    if entry.lane == FAIR_SHARE:
        if entry.allocation is not None:
            reasons.append(Reason("allocation_exhausted", entry.allocation))
        window = state.reservation
        if window is not None and window["instance"] != instance:
            reasons.append(Reason("reserved_for_other", window))
        active = state.session
        if active is not None and active["id"] != session:
            if active["queued"]:
                reasons.append(Reason("session_lane_busy", active))
            elif active["accepting"]:
                reasons.append(Reason("backend_held", active))
        if session is not None and session_state in WAITING_STATES:
            reasons.append(Reason("session_waiting", {"session": session, "state": session_state}))
    if entry.ahead:
        reasons.append(Reason(f"{entry.lane}_ahead", {"count": entry.ahead}))
    return reasons
