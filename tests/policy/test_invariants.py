"""Properties of the rules over random action sequences (hypothesis).

Each example builds a small world (two backends, four instances, random
settings, reservations, shares), applies random actions at small integer
times, runs every due instant one by one and checks the invariants after each
instant and at the end.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler.policy import Policy, make_plan
from scheduler.policy.model import (
    CancelJob,
    CancelSession,
    CloseSession,
    CreateSession,
    FinishJob,
    Outcome,
    SetBackendStatus,
    Submit,
)

from .helpers import make_policy, reservation

BACKENDS = ("a", "b")
INSTANCES = ("h1/g1/p1", "h1/g1/p2", "h1/g2/p1", "h2/g1/p1")
NODES = ("h1", "h2", "h1/g1", "h1/g2", *INSTANCES)
REFUSALS = {
    "unknown_backend",
    "unknown_session",
    "backend_mismatch",
    "instance_mismatch",
    "session_closed",
}
JOB_STATES = {"Queued", "Running", "Completed", "Failed", "Cancelled"}
FINAL = {"Completed", "Failed", "Cancelled"}
MOVES = {
    ("open", "active"),
    ("open", "closed"),
    ("active", "inactive"),
    ("active", "closed"),
    ("inactive", "active"),
    ("inactive", "closed"),
}
WINDOW = 10**9  # usage never expires in these short worlds


@st.composite
def windows(draw: st.DrawFn, backend: str) -> list[Any]:
    """Non-overlapping reservation windows on one backend."""
    points = sorted(draw(st.sets(st.integers(0, 120), max_size=6)))
    result = []
    for i, (start, end) in enumerate(zip(points[::2], points[1::2], strict=False)):
        result.append(
            reservation(
                start,
                end,
                instance=draw(st.sampled_from(INSTANCES)),
                backend=backend,
                exclusive=draw(st.booleans()),
                id=f"r{backend}{i}",
            )
        )
    return result


# Raw operations: references to jobs and sessions are indices, resolved while
# driving against the ids that exist by then. Submissions dominate.
backend_or_unknown = st.sampled_from((*BACKENDS, *BACKENDS, *BACKENDS, "zz"))
submit_op = st.tuples(
    st.just("submit"),
    st.sampled_from(INSTANCES),
    backend_or_unknown,
    st.integers(0, 7).flatmap(lambda k: st.none() if k == 0 else st.integers(0, 20)),  # duration
    st.none() | st.none() | st.integers(0, 40),  # max_execution_time
    st.sampled_from(("none", "none", "new", "join", "join", "join", "ghost")),
    st.integers(0, 9),  # which session to join
    st.integers(0, 5).map(bool),  # join with the session's own backend and instance
    st.sampled_from(("dedicated", "dedicated", "batch")),
)
OPS = {
    "submit": submit_op,
    "create": st.tuples(
        st.just("create"),
        st.sampled_from(INSTANCES),
        backend_or_unknown,
        st.none() | st.integers(0, 60),
        st.sampled_from(("dedicated", "dedicated", "batch")),
    ),
    "cancel_job": st.tuples(st.just("cancel_job"), st.integers(0, 30)),
    "finish_job": st.tuples(
        st.just("finish_job"), st.integers(0, 30), st.sampled_from(("Completed", "Failed"))
    ),
    "close": st.tuples(st.just("close"), st.integers(0, 9)),
    "cancel_session": st.tuples(st.just("cancel_session"), st.integers(0, 9)),
    "toggle": st.tuples(st.just("toggle"), st.sampled_from(BACKENDS)),  # pause or resume
}
WEIGHTS = {
    "submit": 12,
    "create": 2,
    "cancel_job": 2,
    "finish_job": 1,
    "close": 2,
    "cancel_session": 1,
    "toggle": 3,
}
op = st.sampled_from([kind for kind, weight in WEIGHTS.items() for _ in range(weight)]).flatmap(
    OPS.__getitem__
)


@dataclass
class World:
    settings: dict[str, int]
    paused: list[str]
    reservations: list[Any]
    shares: dict[str, int]
    steps: list[tuple[int, tuple[Any, ...]]]  # (time, raw op), times non-decreasing


@st.composite
def worlds(draw: st.DrawFn) -> World:
    config = {
        "interactive_ttl": draw(st.integers(0, 30)),
        "batch_interactive_ttl": draw(st.integers(0, 3)),
        "system_max_ttl": draw(st.integers(10, 100)),
        "open_timeout": draw(st.integers(1, 60)),
        "usage_window": WINDOW,
        "backend_max_runtime": draw(st.integers(10, 60)),
    }
    gaps = draw(st.lists(st.integers(0, 12), min_size=6, max_size=40))
    times = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    return World(
        settings=config,
        paused=draw(st.sampled_from(([], [], [], ["a"]))),
        reservations=[r for b in BACKENDS for r in draw(windows(b))],
        shares=draw(st.dictionaries(st.sampled_from(NODES), st.integers(0, 3), max_size=3)),
        steps=[(t, draw(op)) for t in times],
    )


@dataclass
class Run:
    """A policy under test, and what the test saw it do."""

    policy: Policy
    status_log: dict[str, list[tuple[int, str]]]
    submissions: list[tuple[str, Outcome]] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> backend, instance
    final_jobs: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    closed: dict[str, int] = field(default_factory=dict)  # session -> history length when closed

    def resolve(self, raw: tuple[Any, ...]) -> Any:
        kind = raw[0]
        if kind == "submit":
            _, instance, backend, duration, max_time, how, pick, matching, mode = raw
            job = f"j{len(self.jobs)}"
            self.jobs.append(job)
            session, start = None, False
            if how == "new":
                session, start = f"s{len(self.sessions)}", True
            elif how == "ghost":
                session = "ghost"
            elif how == "join" and self.sessions:
                session = list(self.sessions)[pick % len(self.sessions)]
                if matching:
                    backend, instance = self.sessions[session]
            if start and backend in BACKENDS:
                self.sessions[session] = (backend, instance)
            return Submit(
                job=job,
                instance=instance,
                backend=backend,
                duration=duration,
                session=session,
                start_session=start,
                max_execution_time=max_time,
                mode=mode,
            )
        if kind == "create":
            _, instance, backend, max_ttl, mode = raw
            session = f"s{len(self.sessions)}"
            if backend in BACKENDS:
                self.sessions[session] = (backend, instance)
            else:
                self.jobs.append(f"unused_{session}")  # keep ids fresh
                session = f"x{len(self.jobs)}"
            return CreateSession(
                session=session, instance=instance, backend=backend, max_ttl=max_ttl, mode=mode
            )
        if kind in ("cancel_job", "finish_job"):
            job = self.jobs[raw[1] % len(self.jobs)] if self.jobs else "nothing"
            return CancelJob(job) if kind == "cancel_job" else FinishJob(job, raw[2])
        if kind in ("close", "cancel_session"):
            session = list(self.sessions)[raw[1] % len(self.sessions)] if self.sessions else "none"
            return CloseSession(session) if kind == "close" else CancelSession(session)
        backend = raw[1]
        paused = self.status_log[backend][-1][1] == "paused"
        return SetBackendStatus(backend, "online" if paused else "paused")

    def instant(self, t: int, actions: list[Any], *, check_estimates: bool) -> None:
        outcomes = self.policy.run_instant(t, actions).outcomes
        for action, outcome in zip(actions, outcomes, strict=True):
            if isinstance(action, Submit):
                self.submissions.append((action.job, outcome))
            if isinstance(action, SetBackendStatus) and action.backend in BACKENDS:
                self.status_log[action.backend].append((t, action.status))
        check_state(self)
        if check_estimates:
            check_estimates_replay(self.policy, t)


def build(world: World) -> Run:
    policy = make_policy(
        *BACKENDS,
        paused=world.paused,
        reservations=world.reservations,
        shares=world.shares,
        **world.settings,
    )
    log = {b: [(0, "paused" if b in world.paused else "online")] for b in BACKENDS}
    return Run(policy, log)


def drive(world: World, *, check_estimates: bool = False) -> Run:
    """Apply the world's steps, visiting every due instant, then run until idle."""
    run = build(world)
    policy = run.policy
    steps = world.steps
    i = 0
    while True:
        due = policy.next_due()
        if i < len(steps) and (due is None or steps[i][0] <= due):
            t = steps[i][0]
        elif due is not None:
            t = due
        else:
            break
        actions = []
        while i < len(steps) and steps[i][0] == t:
            actions.append(run.resolve(steps[i][1]))
            i += 1
        run.instant(t, actions, check_estimates=check_estimates and bool(actions))
    return run


# ---------------------------------------------------------------- checks
def check_state(run: Run) -> None:
    """What must hold after every instant."""
    policy = run.policy
    for name, backend in policy.backends.items():
        running = [j for j in policy.jobs.values() if j.backend == name and j.status == "Running"]
        assert len(running) <= 1, f"{name} runs {[j.id for j in running]}"
        assert backend.running is (running[0] if running else None)
        active = [s for s in policy.sessions.values() if s.backend == name and s.state == "active"]
        assert len(active) <= 1, f"{name} has active sessions {[s.id for s in active]}"
        assert backend.active_session is (active[0] if active else None)
    for job_id, seen in run.final_jobs.items():
        job = policy.jobs[job_id]
        assert (job.status, job.started_at, job.ended_at, job.error) == seen, job_id
    for job in policy.jobs.values():
        if job.status in FINAL and job.id not in run.final_jobs:
            assert job.ended_at is not None
            run.final_jobs[job.id] = (job.status, job.started_at, job.ended_at, job.error)
    for session_id, length in run.closed.items():
        assert len(policy.sessions[session_id].history) == length, session_id
    for session in policy.sessions.values():
        if session.state == "closed":
            run.closed.setdefault(session.id, len(session.history))


def check_estimates_replay(policy: Policy, now: int) -> None:
    """Estimates equal the starts of the same state run forward with nothing new."""
    estimates = make_plan(policy, now).entries
    future = copy.deepcopy(policy)
    order: dict[str, list[str]] = defaultdict(list)
    while (due := future.next_due()) is not None:
        for job in future.run_instant(due).started:
            if job.id in estimates:
                order[job.backend].append(job.id)
    positions = {job: rank for jobs in order.values() for rank, job in enumerate(jobs, 1)}
    for job, guess in estimates.items():
        assert guess.start == future.jobs[job].started_at, job
        assert guess.position == positions.get(job), job


def check_history(run: Run) -> None:
    for session in run.policy.sessions.values():
        history = session.history
        assert history[0][1] == "open"
        times = [t for t, _ in history]
        assert times == sorted(times), session.id
        for (_, before), (_, after) in zip(history, history[1:], strict=False):
            assert (before, after) in MOVES, (session.id, history)


def spans(intervals: list[tuple[int, int, str]]) -> None:
    """Positive-length intervals of one backend never overlap."""
    intervals = sorted(i for i in intervals if i[1] > i[0])
    for (_, end, a), (start, _, b) in zip(intervals, intervals[1:], strict=False):
        assert start >= end, f"{a} and {b} overlap"


def check_exclusive_spans(run: Run, end_time: int) -> None:
    policy = run.policy
    for name in BACKENDS:
        runs = [
            (j.started_at, j.ended_at, j.id)
            for j in policy.jobs.values()
            if j.backend == name and j.started_at is not None
        ]
        spans(runs)
        active = []
        for s in policy.sessions.values():
            if s.backend != name:
                continue
            marks = [*s.history, (end_time, "end")]
            active += [
                (t0, t1, s.id)
                for (t0, st0), (t1, _) in zip(marks, marks[1:], strict=False)
                if st0 == "active"
            ]
        spans(active)


def check_reservation_windows(run: Run) -> None:
    """Inside a window the reserving instance starts from the reservation lane, and
    inside an exclusive window nobody else starts."""
    for job in run.policy.jobs.values():
        if job.started_at is None:
            continue
        for r in run.policy.reservations.values():
            if r.backend != job.backend or not r.start <= job.started_at < r.end:
                continue
            if job.instance == r.instance:
                assert job.lane == "reservation", job.id
            else:
                assert not r.exclusive, f"{job.id} started in exclusive window {r.id}"
                assert job.lane != "reservation", job.id


def independent_usage(run: Run, end_time: int) -> dict[str, int]:
    """Runs plus holds per instance, from job times, session histories and status changes."""
    policy = run.policy
    usage: dict[str, int] = defaultdict(int)
    for job in policy.jobs.values():
        if job.started_at is not None:
            assert job.ended_at is not None
            usage[job.instance] += job.ended_at - job.started_at
    for name in BACKENDS:
        jobs = [j for j in policy.jobs.values() if j.backend == name and j.started_at is not None]
        sessions = [s for s in policy.sessions.values() if s.backend == name]
        windows = [r for r in policy.reservations.values() if r.backend == name]
        cuts = {0, end_time}
        cuts |= {t for j in jobs for t in (j.started_at, j.ended_at)}
        cuts |= {t for s in sessions for t, _ in s.history}
        cuts |= {t for t, _ in run.status_log[name]}
        cuts |= {t for r in windows for t in (r.start, r.end)}
        points = sorted(cuts)
        for t0, t1 in zip(points, points[1:], strict=False):
            if any(j.started_at <= t0 < j.ended_at for j in jobs):
                continue
            if [s for t, s in run.status_log[name] if t <= t0][-1] != "online":
                continue
            for s in sessions:
                states = [state for t, state in s.history if t <= t0]
                if not states or states[-1] != "active":
                    continue
                if any(
                    r.exclusive and r.instance != s.instance and r.start <= t0 < r.end
                    for r in windows
                ):
                    continue
                usage[s.instance] += t1 - t0
    return usage


def check_end(run: Run) -> None:
    policy = run.policy
    end_time = policy.now or 0
    accepted = [job for job, outcome in run.submissions if outcome.accepted]
    for job, outcome in run.submissions:
        if outcome.accepted:
            assert policy.jobs[job].status in JOB_STATES
        else:
            assert outcome.code in REFUSALS, outcome
            assert job not in policy.jobs
    assert sorted(policy.jobs) == sorted(accepted)
    # Idle: nothing runs, no session is active, and only paused backends keep a queue.
    assert all(j.status != "Running" for j in policy.jobs.values())
    assert all(s.state != "active" for s in policy.sessions.values())
    for job in policy.jobs.values():
        if job.status == "Queued":
            assert policy.backends[job.backend].status == "paused", job.id
    check_history(run)
    check_exclusive_spans(run, end_time)
    check_reservation_windows(run)
    expected = independent_usage(run, end_time)
    policy.usage.expire(end_time)
    for instance in INSTANCES:
        assert policy.usage.of(instance) == expected[instance], instance
    for node in NODES[:4]:
        leaves = [i for i in INSTANCES if i.startswith(node + "/")]
        assert policy.usage.of(node) == sum(expected[i] for i in leaves), node


PROPERTY = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(worlds())
def test_rules_hold_over_random_action_sequences(world: World) -> None:
    run = drive(world)

    check_end(run)


@PROPERTY
@given(worlds())
def test_estimates_equal_actual_starts_when_nothing_new_arrives(world: World) -> None:
    drive(world, check_estimates=True)
