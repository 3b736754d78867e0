"""Incremental plans: after a change, replay only the backends whose plan may differ.

`make_plan` replays every backend together. Backends share one thing in the rules:
the fair-share usage, which every backend's runs and holds add to and every
fair-share pick compares. So `PlanCache` keeps each backend's last replay
(`scheduler.policy.replay`: its starts, its charges, the instants at which its
picks compared usage) and, for a new plan, replays together only:

1. the backends that changed since the last plan (`Changes`: a job, session,
   reservation, status or hold of theirs, a run or hold they charged live),
   those whose running job is past its modeled end (the replay ends it "now")
   and those whose next start is now in the past (a replay starts it "now");
2. with the other backends' charges taken from their last replay.

A backend left out keeps its last replay when nothing it read can have moved: it
is **invalidated** when

- its last usage comparison is at or after the first instant at which the
  replayed backends' charges differ from the ones they had (their new replay,
  after what they charged live since the last plan, against their last replay);
- or a hold charge of either side falls at an instant at which the other side
  compares usage (a hold ends inside an instant, maybe after another backend's
  pick: the order is not known across replays).

An invalidated backend makes the plan a full replay, and the next `COUPLED_PLANS`
plans too (backends coupled by their usage tend to stay so). So are the first plan, a
plan after a change of shares (it moves every comparison) or after the leader
loaded again, and every plan of a policy with allocations: they couple backends
beyond the usage totals (a job's eligibility, the instants at which one frees).
Anything else is equal to a full replay: `tests/policy/test_incremental.py`
checks it after random sequences of changes.
"""

from __future__ import annotations

import weakref
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .core import Policy
from .model import QUEUED, RUNNING, Backend, Instant, Job, Reservation, Session
from .plan import (
    BackendState,
    Plan,
    PlanEntry,
    _backend_state,
    backend_entries,
    head_of,
    make_plan,
    waiting_lane,
    with_head,
)
from .replay import BackendReplay, Charge, replay_backends

GLOBAL_EVENTS = frozenset({"share_changed", "allocation_changed"})
# After a replay of some backends moved the others' plans, this many plans replay all
# backends at once before some are tried alone again (the coupling tends to last).
COUPLED_PLANS = 8


@dataclass
class Changes:
    """What the live policy did since the last plan was begun."""

    everything: bool = True  # a full replay is needed whatever else happened
    backends: set[str] = field(default_factory=set)
    live: dict[str, list[Charge]] = field(default_factory=dict)  # charges, by backend

    def note(self, instant: Instant) -> None:
        """Take in what one step of the live policy did (its events and charges)."""
        backends = self.backends
        for event in instant.events:
            subject = event.subject
            if isinstance(subject, Job | Session | Reservation):
                backends.add(subject.backend)
            elif isinstance(subject, Backend):
                backends.add(subject.name)
            elif event.kind in GLOBAL_EVENTS:
                self.everything = True
        for charge in instant.charges:
            name = charge.source.backend
            backends.add(name)
            self.live.setdefault(name, []).append((charge.end, charge.instance, charge.amount))


@dataclass(slots=True)
class BackendPlan:
    """One backend's part of a plan: its replay (None: not reusable) and entries."""

    replay: BackendReplay | None
    entries: dict[str, PlanEntry]
    head: list[dict[str, Any]]
    held: int = 0  # queued jobs that allocations keep out of the fair-share lane


@dataclass
class Update:
    """What making one plan found: the backends replayed, each backend's state."""

    at: int
    full: bool
    backends: dict[str, BackendPlan]  # the replayed ones (all of them when `full`)
    states: dict[str, BackendState]  # every backend's, heads left empty
    shares: dict[str, float]
    reused: bool = True  # whether later plans may build on it (not with allocations)


class PlanCache:
    """The last plan, per backend, kept to replay only what a change can move."""

    def __init__(self) -> None:
        self.backends: dict[str, BackendPlan] = {}
        self.shares: dict[str, float] = {}
        self._policy: weakref.ref[Policy] | None = None
        self.valid = False
        self.coupled = 0  # full replays to make before replaying some backends alone again

    def make(self, policy: Policy, now: int, changes: Changes) -> tuple[Plan, Update]:
        """The plan of `policy` at `now`, replaying only what `changes` may have moved;
        the cache keeps it."""
        update = self.compute(policy, now, changes)
        assert update is not None  # a replay on copies goes on to a full one itself
        self.apply(update, policy)
        return self.plan(update), update

    # ------------------------------------------------------------- computing
    def compute(
        self,
        policy: Policy,
        now: int,
        changes: Changes,
        *,
        in_place: bool = False,
        incremental: bool = True,
    ) -> Update | None:
        """Replay what `changes` may have moved; leaves the cache as it is (see `apply`).

        `in_place`: `policy` may be used up (a forked process's). Then a replay of
        some backends that turns out to move others' plans cannot be followed by a
        full one: the answer is None, and the caller asks again with everything.
        Not `incremental`: `make_plan`, kept by nothing (the planner of before)."""
        start = max(now, policy.now) if policy.now is not None else now
        states = {name: _backend_state(policy, name) for name in policy.backends}
        shares = dict(policy.shares)
        if policy.allocations.items or not incremental:
            plan = make_plan(policy, now, in_place=in_place)
            return _from_plan(plan, states, shares)
        dirty = self.dirty(policy, start, changes)
        if dirty is None:
            return self._replay(policy, set(policy.backends), start, states, shares, in_place)
        if not dirty:
            return Update(at=start, full=False, backends={}, states=states, shares=shares)
        update = self._replay(policy, dirty, start, states, shares, in_place)
        if not self._invalidated(update, changes.live):
            return update
        self.coupled = COUPLED_PLANS
        if in_place:
            return None
        return self._replay(policy, set(policy.backends), start, states, shares, False)

    def dirty(self, policy: Policy, start: int, changes: Changes) -> set[str] | None:
        """The backends to replay first; None: all of them, the plan is a full replay."""
        known = self._policy() if self._policy is not None else None
        if (
            changes.everything
            or not self.valid
            or known is not policy
            or self.shares != policy.shares
            or self.coupled > 0
        ):
            return None
        dirty = {name for name in changes.backends if name in policy.backends}
        dirty |= set(policy.backends) - self.backends.keys()
        for name, backend in policy.backends.items():
            if name in dirty:
                continue
            kept = self.backends[name].replay
            if kept is None or _overdue(backend.running, start):
                dirty.add(name)
            elif kept.starts and kept.starts[0][0] < start:
                dirty.add(name)  # a start now in the past: a replay says it starts `start`
        return None if len(dirty) == len(policy.backends) else dirty

    def _replay(
        self,
        policy: Policy,
        names: set[str],
        start: int,
        states: dict[str, BackendState],
        shares: dict[str, float],
        in_place: bool,
    ) -> Update:
        full = len(names) == len(policy.backends)
        lanes: dict[str, dict[str, str]] = {name: {} for name in names}
        for job in policy.jobs.values():
            if job.status == QUEUED and job.backend in names:
                lanes[job.backend][job.id] = waiting_lane(policy.backends[job.backend], job)
        external: list[Charge] = []
        if not full:
            for name, kept in self.backends.items():
                if name not in names and kept.replay is not None:
                    external += kept.replay.charges
        runs = replay_backends(policy, names, start, external, in_place=in_place)
        backends = {
            name: BackendPlan(
                run, backend_entries(name, run.starts, lanes[name], {}), head_of(policy, run.starts)
            )
            for name, run in runs.items()
        }
        return Update(at=start, full=full, backends=backends, states=states, shares=shares)

    def _invalidated(self, update: Update, live: Mapping[str, list[Charge]]) -> bool:
        """Whether a backend left out of `update` may have a plan of its own that moved."""
        first: int | None = None  # the first instant at which a replayed backend's charges moved
        replayed: list[BackendReplay] = []  # their replays, new and old
        for name, part in update.backends.items():
            assert part.replay is not None
            kept = self.backends.get(name)
            old = kept.replay if kept is not None else None
            charges = old.charges if old is not None else []
            differs = _first_difference(charges, [*live.get(name, ()), *part.replay.charges])
            if differs is not None and (first is None or differs < first):
                first = differs
            replayed += [part.replay] if old is None else [part.replay, old]
        for name, kept in self.backends.items():
            if name in update.backends:
                continue
            other = kept.replay
            if other is None:
                return True
            last = other.last_read
            if first is not None and last is not None and last >= first:
                return True
            for run in replayed:
                if _meet(other.holds, run.reads) or _meet(run.holds, other.reads):
                    return True
        return False

    # --------------------------------------------------------------- keeping
    def apply(self, update: Update, policy: Policy | None = None) -> dict[str, PlanEntry | None]:
        """Keep `update` (the plan of `policy`) as the last plan; returns the entries that
        changed (None: the job has none any more)."""
        changed: dict[str, PlanEntry | None] = {}
        if update.full:
            old = {uid for kept in self.backends.values() for uid in kept.entries}
            fresh = {uid for kept in update.backends.values() for uid in kept.entries}
            changed.update(dict.fromkeys(old - fresh))
            for name in list(self.backends):
                if name not in update.backends:
                    del self.backends[name]
        for name, part in update.backends.items():
            before = self.backends.get(name)
            old_entries = before.entries if before is not None else {}
            for uid, entry in part.entries.items():
                if old_entries.get(uid) != entry:
                    changed[uid] = entry
            for uid in old_entries.keys() - part.entries.keys():
                changed[uid] = None
            self.backends[name] = part
        self.shares = update.shares
        self.valid = update.reused
        if update.full and self.coupled > 0:
            self.coupled -= 1
        if policy is not None:
            self._policy = weakref.ref(policy)
        return changed

    def plan(self, update: Update) -> Plan:
        """The whole plan, after `apply(update)`."""
        entries: dict[str, PlanEntry] = {}
        states = {}
        for name, state in update.states.items():
            kept = self.backends.get(name)
            if kept is None:
                states[name] = state
                continue
            entries.update(kept.entries)
            states[name] = with_head(state, kept.head, kept.held)
        return Plan(at=update.at, entries=entries, backends=states)

    def size(self) -> int:
        """How many entries the last plan has."""
        return sum(len(kept.entries) for kept in self.backends.values())

    def entries(self) -> dict[str, PlanEntry]:
        """Every entry of the last plan."""
        out: dict[str, PlanEntry] = {}
        for kept in self.backends.values():
            out.update(kept.entries)
        return out

    def forget(self) -> None:
        """Drop the cache: the next plan is a full replay."""
        self.backends = {}
        self.valid = False
        self._policy = None


def _from_plan(plan: Plan, states: dict[str, BackendState], shares: dict[str, float]) -> Update:
    """An update from a full `make_plan` (allocations): its parts cannot be reused."""
    parts: dict[str, dict[str, PlanEntry]] = {name: {} for name in plan.backends}
    for uid, entry in plan.entries.items():
        parts[entry.backend][uid] = entry
    backends = {
        name: BackendPlan(None, parts[name], state.head, state.allocation_blocked)
        for name, state in plan.backends.items()
    }
    return Update(
        at=plan.at, full=True, backends=backends, states=states, shares=shares, reused=False
    )


def _overdue(job: Job | None, start: int) -> bool:
    """Whether a running job is past its modeled end at `start` (the replay moves its
    end to `start`, so its backend's plan moves with time)."""
    if job is None or job.status != RUNNING or job.duration is not None:
        return False
    if job.expected is None or job.started_at is None:
        return False
    return start - job.started_at > job.expected


def _first_difference(old: list[Charge], new: list[Charge]) -> int | None:
    """The first instant at which two lists of charges (in order) differ; None: equal."""
    for a, b in zip(old, new, strict=False):
        if a != b:
            return min(a[0], b[0])
    if len(old) == len(new):
        return None
    return (old if len(old) > len(new) else new)[min(len(old), len(new))][0]


def _meet(holds: Iterable[int], reads: list[int]) -> bool:
    """Whether an instant of `holds` is also one of `reads` (sorted)."""
    for t in holds:
        i = bisect_left(reads, t)
        if i < len(reads) and reads[i] == t:
            return True
    return False


__all__ = ["BackendPlan", "Changes", "PlanCache", "Update", "head_of"]
