"""One replay of the plan, run for some backends only, recording what couples them.

Backends share nothing in the rules but the fair-share usage (docs/rules.md,
"Fair-share usage"): a backend's fair-share pick compares the usage of the
instance tree's nodes, and every backend's runs and holds add to it. So a
replay of some backends (`replay_backends`) takes the other backends' charges
as given (`external`, from their own last replay) and records, for each
backend it runs:

- `starts`: the queued jobs in the order it starts them, with the instants;
- `charges`: every run and hold it charges, in order, as (end, instance, amount);
- `holds`: the instants of its hold charges (a hold can end after another
  backend's pick in the same instant, so its order there is not known here);
- `reads`: the instants at which its fair-share pick compared usage (two or
  more projects had a job in the lane), in order.

The replay runs on until nothing is due, past the last start, so the charges
are complete. An external charge enters the usage at the first instant the
replay processes at or after its end, before that instant's jobs finish: a run
always ends in step 1, before any pick of its instant, so the picks see it as
the full replay's do. A hold's place inside its instant is not known here;
`scheduler.policy.incremental` never lets a hold of one side meet a read of
the other side at one instant.

Allocations couple backends in more ways (a job's eligibility, the instants at
which one frees): a policy with allocations is only replayed whole.
"""

from __future__ import annotations

import copy
import heapq
from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from .allocations import Allocations
from .core import Policy
from .model import QUEUED, Backend, Job, Reservation, Session
from .plan import assume_modeled_durations
from .queues import ROOT, BackendQueues, ProjectQueue, UsageLedger, _Past

Charge = tuple[int, str, int]  # end, instance, amount


@dataclass(slots=True)
class BackendReplay:
    """What one backend did in a replay (see the module's docstring)."""

    starts: list[tuple[int, str]] = field(default_factory=list)
    charges: list[Charge] = field(default_factory=list)
    holds: list[int] = field(default_factory=list)
    reads: list[int] = field(default_factory=list)

    @property
    def last_read(self) -> int | None:
        return self.reads[-1] if self.reads else None


class _Recorder(Policy):
    """A policy being replayed: records starts, charges and reads per backend, and
    takes in the other backends' charges as their instants come."""

    runs: dict[str, BackendReplay]
    external: list[Charge]  # sorted by end; `fed` of them are in the usage already
    fed: int
    picking: tuple[str, int]

    def _choose(self, backend: Backend, t: int) -> tuple[Job | None, str]:
        self.picking = (backend.name, t)
        return super()._choose(backend, t)

    def _fair_share(self, queues: BackendQueues) -> Job | None:
        if _compares(queues):
            name, t = self.picking
            reads = self.runs[name].reads
            if not reads or reads[-1] != t:
                reads.append(t)
        return super()._fair_share(queues)

    def _charge(self, instance: str, amount: int, end: int, source: Job | Session) -> None:
        if amount > 0:
            run = self.runs[source.backend]
            run.charges.append((end, instance, amount))
            if isinstance(source, Session):
                run.holds.append(end)
        super()._charge(instance, amount, end, source)

    def _finish_due(self, t: int) -> None:
        external, fed = self.external, self.fed
        while fed < len(external) and external[fed][0] <= t:
            end, instance, amount = external[fed]
            self.usage.charge(instance, amount, end)
            fed += 1
        self.fed = fed
        super()._finish_due(t)


def _compares(queues: BackendQueues) -> bool:
    """Whether a fair-share pick compares usage: two or more projects have a job."""
    node = ROOT
    for _level in range(3):
        kids = queues.children.get(node)
        if not kids:
            return False
        if len(kids) > 1:
            return True
        (node,) = kids
    return False


def replay_backends(
    policy: Policy,
    names: Collection[str],
    now: int,
    external: Iterable[Charge] = (),
    *,
    in_place: bool = False,
) -> dict[str, BackendReplay]:
    """Replay `names` of `policy`'s backends from `now` with nothing new arriving, the
    other backends' charges given by `external`. Without allocations only.

    Works on copies of those backends' state, unless `in_place` (a throw-away policy,
    such as a forked process's: then `policy` is used up)."""
    if policy.allocations.items:
        raise ValueError("a policy with allocations is replayed whole (make_plan)")
    replay = _restrict(policy, set(names), in_place=in_place)
    replay.runs = {name: BackendReplay() for name in replay.backends}
    replay.external = sorted(external, key=lambda charge: charge[0])
    replay.fed = 0
    start = max(now, policy.now) if policy.now is not None else now
    assume_modeled_durations(replay, start)
    queued = {job.id for job in replay.jobs.values() if job.status == QUEUED}
    t: int | None = start
    while t is not None:
        for job in replay.run_instant(t, log=False).started:
            if job.id in queued:
                replay.runs[job.backend].starts.append((t, job.id))
        t = replay.next_due()
    return replay.runs


def _restrict(policy: Policy, names: set[str], *, in_place: bool) -> _Recorder:
    """A policy of `names`' backends only: their jobs, sessions, reservations, timers,
    with a copy of the usage (copies of everything, unless `in_place`)."""
    own = _Identity() if in_place else _Copier()

    def mine(subject: object) -> bool:
        return isinstance(subject, Session | Reservation | Job) and subject.backend in names

    out = _Recorder.__new__(_Recorder)
    out.__dict__.update(policy.__dict__)
    out.backends = {name: own.backend(b) for name, b in policy.backends.items() if name in names}
    out._order = [out.backends[b.name] for b in policy._order if b.name in names]
    out._queues = {name: own.queues(q) for name, q in policy._queues.items() if name in names}
    out.jobs = {uid: own.job(job) for uid, job in policy.jobs.items() if job.backend in names}
    out.sessions = {sid: own.session(s) for sid, s in policy.sessions.items() if s.backend in names}
    out.reservations = {
        rid: own.reservation(r) for rid, r in policy.reservations.items() if r.backend in names
    }
    out._timers = [
        (due, kind, seq, ticket, own.subject(subject))
        for due, kind, seq, ticket, subject in policy._timers
        if mine(subject)
    ]
    heapq.heapify(out._timers)
    out._ends = [(end, b, seq, own.job(job)) for end, b, seq, job in policy._ends if b in names]
    heapq.heapify(out._ends)
    out._bound = {
        rid: [own.session(s) for s in sessions]
        for rid, sessions in policy._bound.items()
        if any(s.backend in names for s in sessions)
    }
    out._reservation_timers = {
        key: ticket
        for key, ticket in policy._reservation_timers.items()
        if key[0] in out.reservations
    }
    out._timer_tickets = copy.deepcopy(policy._timer_tickets)
    out.usage = policy.usage if in_place else _copy_usage(policy.usage)
    out.usage.watch = None
    out.allocations = Allocations(out.usage)
    out.shares = dict(policy.shares)
    return out


class _Identity:
    """The objects themselves (a replay in place)."""

    def job(self, job: Job) -> Job:
        return job

    def session(self, session: Session) -> Session:
        return session

    def reservation(self, reservation: Reservation) -> Reservation:
        return reservation

    def backend(self, backend: Backend) -> Backend:
        return backend

    def queues(self, queues: BackendQueues) -> BackendQueues:
        return queues

    def subject(self, subject: object) -> object:
        return subject


class _Copier(_Identity):
    """Copies of the state of some backends, each object copied once (what a deep copy
    does, without its generic walk: a replay copies tens of thousands of jobs)."""

    def __init__(self) -> None:
        self.copies: dict[int, Any] = {}

    def job(self, job: Job) -> Job:
        new: Job | None = self.copies.get(id(job))
        if new is None:
            new = self.copies[id(job)] = _shallow(job, Job)
            if job.session is not None:
                new.session = self.session(job.session)
        return new

    def session(self, session: Session) -> Session:
        new: Session | None = self.copies.get(id(session))
        if new is None:
            new = self.copies[id(session)] = _shallow(session, Session)
            new.history = list(session.history)
            new.queue = deque(self.job(job) for job in session.queue)
        return new

    def reservation(self, reservation: Reservation) -> Reservation:
        new: Reservation | None = self.copies.get(id(reservation))
        if new is None:
            new = self.copies[id(reservation)] = _shallow(reservation, Reservation)
        return new

    def backend(self, backend: Backend) -> Backend:
        new = _shallow(backend, Backend)
        if backend.running is not None:
            new.running = self.job(backend.running)
        for name in ("active_session", "hold_session"):
            session = getattr(backend, name)
            if session is not None:
                setattr(new, name, self.session(session))
        if backend.reservation is not None:
            new.reservation = self.reservation(backend.reservation)
        return new

    def queues(self, queues: BackendQueues) -> BackendQueues:
        new = BackendQueues()
        new.queued = queues.queued
        new.count = dict(queues.count)
        new.children = {node: set(kids) for node, kids in queues.children.items()}
        for instance, project in queues.projects.items():
            copied = new.projects[instance] = ProjectQueue()
            copied.loose = deque(self.job(job) for job in project.loose)
            copied.waiting = [
                (key, ticket, self.session(session)) for key, ticket, session in project.waiting
            ]
            copied.added, copied.unfit = project.added, project.unfit
        return new

    def subject(self, subject: object) -> object:
        if isinstance(subject, Session):
            return self.session(subject)
        if isinstance(subject, Reservation):
            return self.reservation(subject)
        return subject


def _shallow(obj: Any, cls: Any) -> Any:
    new = cls.__new__(cls)
    for name in cls.__slots__:
        setattr(new, name, getattr(obj, name))
    return new


def _copy_usage(usage: UsageLedger) -> UsageLedger:
    out = UsageLedger(usage.window)
    out.totals = dict(usage.totals)
    out.entries = deque(usage.entries)
    out.past = _Past(usage.past)
    out.cutoff, out.forgotten = usage.cutoff, usage.forgotten
    return out
