"""Builders for pure policy tests: a policy in a known state, and a clock to drive it.

Times are plain integer seconds: the policy is unit-agnostic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from scheduler.policy import Policy
from scheduler.policy.model import (
    Action,
    Allocation,
    Backend,
    CancelJob,
    CancelSession,
    CloseSession,
    CreateSession,
    Event,
    Instant,
    Outcome,
    Period,
    PutAllocation,
    Reservation,
    SetBackendStatus,
    Settings,
    Submit,
)
from scheduler.rule_settings import DEFAULTS

A = "hubA/g/p"
B = "hubB/g/p"
C = "hubC/g/p"
R = "hubR/g/p"  # the reserving instance


Script = Iterable[tuple[int, Action]]


class RecordingPolicy(Policy):
    """A policy that keeps every event its instants return, for tests to read."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.events: list[Event] = []

    def run_instant(self, t: int, actions: Sequence[Action] = (), *, log: bool = True) -> Instant:
        instant = super().run_instant(t, actions, log=log)
        self.events += instant.events
        return instant


def make_settings(**overrides: int) -> Settings:
    """The rules' default settings in seconds (docs/rules.md), with `overrides`."""
    return Settings(**{**DEFAULTS, **overrides})


def reservation(
    start: int,
    end: int,
    *,
    instance: str = R,
    backend: str = "a",
    exclusive: bool = False,
    id: str = "r1",
) -> Reservation:
    return Reservation(
        id=id, backend=backend, instance=instance, start=start, end=end, exclusive=exclusive
    )


def make_policy(
    *backends: str,
    paused: Sequence[str] = (),
    max_runtime: Mapping[str, int] | None = None,
    reservations: Sequence[Reservation] = (),
    shares: Mapping[str, float] | None = None,
    usage: Mapping[str, int] | None = None,
    allocations: Sequence[Allocation] = (),
    **settings: int,
) -> RecordingPolicy:
    """A recording policy with `backends` (default one, "a"), settings in seconds.

    `usage` is prior usage per instance, counted as ended at time 0.
    """
    policy = RecordingPolicy(make_settings(**settings))
    for name in backends or ("a",):
        status = "paused" if name in paused else "online"
        policy.add_backend(
            Backend(name=name, status=status, max_runtime=(max_runtime or {}).get(name))
        )
    for r in reservations:
        policy.add_reservation(r)
    for node, share in (shares or {}).items():
        policy.set_share(node, share)
    policy.usage.load((0, instance, used) for instance, used in (usage or {}).items())
    for allocation in allocations:
        policy.put_allocation(allocation)
    return policy


def allocation(
    node: str, amount: int, enforce: str = "queue", period: tuple[int, int] | None = None
) -> Allocation:
    """An allocation of `amount` seconds on `node`; `period` (start, length) or rolling."""
    return Allocation(
        node=node,
        amount=amount,
        enforce=enforce,
        period=None if period is None else Period(*period),
    )


def put_allocation(
    node: str, amount: int | None, enforce: str = "queue", period: tuple[int, int] | None = None
) -> PutAllocation:
    """An operator's change of `node`'s allocation (`amount` None removes it)."""
    return PutAllocation(
        node=node,
        amount=amount,
        enforce=enforce,
        period=None if period is None else Period(*period),
    )


# ------------------------------------------------------------------ actions
def submit(
    job: str,
    instance: str = A,
    backend: str = "a",
    duration: int | None = 10,
    **fields: Any,
) -> Submit:
    """A job submission; `fields` are the other `Submit` fields (session, ...)."""
    return Submit(job=job, instance=instance, backend=backend, duration=duration, **fields)


def session_job(
    job: str, session: str, instance: str = A, duration: int = 10, **fields: Any
) -> Submit:
    """A job joining `session`."""
    return submit(job, instance, duration=duration, session=session, **fields)


def start_session(
    job: str, session: str, instance: str = A, duration: int = 10, **fields: Any
) -> Submit:
    """A job that creates `session` (start_session=true)."""
    return submit(job, instance, duration=duration, session=session, start_session=True, **fields)


def create(session: str, instance: str = A, backend: str = "a", **fields: Any) -> CreateSession:
    return CreateSession(session=session, instance=instance, backend=backend, **fields)


def cancel(job: str) -> CancelJob:
    return CancelJob(job)


def close(session: str) -> CloseSession:
    return CloseSession(session)


def cancel_session(session: str) -> CancelSession:
    return CancelSession(session)


def pause(backend: str = "a") -> SetBackendStatus:
    return SetBackendStatus(backend, "paused")


def resume(backend: str = "a") -> SetBackendStatus:
    return SetBackendStatus(backend, "online")


# -------------------------------------------------------------------- clock
def run_until_idle(policy: Policy, *, until: int | None = None, limit: int = 100_000) -> None:
    """Run every due instant (up to `until`, inclusive) until nothing is due."""
    for _ in range(limit):
        due = policy.next_due()
        if due is None or (until is not None and due > until):
            break
        policy.run_instant(due)
    else:  # pragma: no cover - a runaway timer is a bug
        raise AssertionError(f"still busy after {limit} instants")
    if until is not None and (policy.now is None or policy.now < until):
        policy.run_instant(until)


def timeline(policy: Policy, script: Script, *, until: int | None = None) -> list[Outcome]:
    """Apply timed actions (same instant: in script order), then run until idle.

    `run_instant` runs the instants due before each action's instant first
    (docs/rules.md, "One instant"). Returns the outcomes in script order.
    """
    timed = sorted(enumerate(script), key=lambda item: item[1][0])
    outcomes: dict[int, Outcome] = {}
    i = 0
    while i < len(timed):
        t = timed[i][1][0]
        batch = []
        while i < len(timed) and timed[i][1][0] == t:
            batch.append(timed[i])
            i += 1
        answers = policy.run_instant(t, [action for _, (_, action) in batch]).outcomes
        for (index, _), outcome in zip(batch, answers, strict=True):
            outcomes[index] = outcome
    run_until_idle(policy, until=until)
    return [outcomes[index] for index in range(len(outcomes))]


# ------------------------------------------------------------------ reading
def starts(policy: RecordingPolicy, backend: str | None = None) -> list[tuple[int, str, str]]:
    """(time, job, lane) of every start, in start order (optionally one backend)."""
    return [
        (e.at, e.subject.id, e.detail["lane"])
        for e in policy.events
        if e.kind == "job_started" and backend in (None, e.subject.backend)
    ]


def outcome_of(policy: Policy, job: str) -> tuple[str, int | None, int | None, str | None]:
    """A job's (status, started_at, ended_at, error)."""
    j = policy.jobs[job]
    return j.status, j.started_at, j.ended_at, j.error


def usage_at(policy: Policy, node: str, t: int) -> int:
    """Charged usage of a tree node as seen at `t` (rolling window applied)."""
    return policy.usage.totals_at(t).get(node, 0)
