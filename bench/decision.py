"""The "decision" rows: the cost of ONE scheduling decision with N jobs queued.

All 8 backends are paused while N jobs (a fifth of them in open sessions) are
submitted, so they all queue. Each repetition then resumes one backend at a new
instant and times that `run_instant` call: the policy picks one job through the
lanes (fair share here), starts it and schedules its end. Outside the timing,
the started job is cancelled (with its session, which the start activated), the
backend paused again and as many fresh jobs submitted as left the queue, so
every timed pick sees exactly N queued jobs.
"""

from __future__ import annotations

import cProfile
import gc
import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from scheduler.clock import TICKS_PER_SECOND
from scheduler.policy import Policy
from scheduler.policy import model as m
from scheduler.sim.memory import build_policy
from scheduler.sim.scenario import parse_scenario

from .core import percentile
from .generate import BACKENDS, SESSION_JOB_SHARE, SESSION_JOBS, instances, prior_usage, shares

BATCH = 100  # submissions per instant while filling the queue
EVICT_BYTES = 64 * 1024 * 1024  # more than the last-level cache of current servers


@dataclass(frozen=True)
class DecisionRow:
    queued: int
    sessions: int  # open sessions holding queued jobs
    policy_us: list[float]  # one timed run_instant per repetition, back to back
    cold_us: list[float]  # the same, each after evicting the CPU caches
    naive_us: list[float]  # the rescan baseline on the same queue
    lanes: dict[str, int]


class QueueFiller:
    """Submits plain and session jobs, demand-weighted over the instance tree."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.names = instances()
        self.weights = [demand for _, demand in self.names]
        self.jobs = 0
        self.sessions = 0

    def instance(self) -> str:
        return self.rng.choices(self.names, self.weights)[0][0]

    def duration(self) -> int:
        return round(self.rng.uniform(1, 60) * TICKS_PER_SECOND)

    def plain(self, backend: str) -> m.Submit:
        self.jobs += 1
        return m.Submit(
            job=f"q{self.jobs:07d}",
            instance=self.instance(),
            backend=backend,
            duration=self.duration(),
        )

    def units(self, n_jobs: int) -> Iterable[m.Action]:
        """`n_jobs` submissions; a fifth of the jobs in sessions of 2-10 jobs."""
        rng = self.rng
        mean = sum(SESSION_JOBS) / 2
        p_session = SESSION_JOB_SHARE / (mean * (1 - SESSION_JOB_SHARE) + SESSION_JOB_SHARE)
        made = 0
        while made < n_jobs:
            backend = rng.choice(BACKENDS)
            size = min(n_jobs - made, rng.randint(*SESSION_JOBS))
            if size < SESSION_JOBS[0] or rng.random() >= p_session:
                made += 1
                yield self.plain(backend)
                continue
            self.sessions += 1
            session, instance = f"qs{self.sessions:06d}", self.instance()
            by_create = rng.random() < 0.5
            if by_create:
                yield m.CreateSession(session=session, instance=instance, backend=backend)
            for k in range(size):
                self.jobs += 1
                yield m.Submit(
                    job=f"q{self.jobs:07d}",
                    instance=instance,
                    backend=backend,
                    duration=self.duration(),
                    session=session,
                    start_session=k == 0 and not by_create,
                )
            made += size


def queued_policy(n_jobs: int, seed: int) -> tuple[Policy, QueueFiller, int]:
    """A policy with 8 paused backends, the bench instance tree and `n_jobs` queued."""
    rng = random.Random(f"qdash-bench-decision:{seed}:{n_jobs}")
    document = {
        "backends": [{"name": b, "status": "paused"} for b in BACKENDS],
        "shares": shares(),
        "usage": prior_usage(rng),
    }
    policy = build_policy(parse_scenario(json.dumps(document)))
    filler = QueueFiller(rng)
    t = 0
    batch: list[m.Action] = []
    for action in filler.units(n_jobs):
        batch.append(action)
        if len(batch) >= BATCH and isinstance(action, m.Submit) and not action.session:
            t += TICKS_PER_SECOND
            _check(policy.run_instant(t, batch).outcomes)
            batch = []
    t += TICKS_PER_SECOND
    _check(policy.run_instant(t, batch).outcomes)
    return policy, filler, t


def _check(outcomes: list[m.Outcome]) -> None:
    refused = [o for o in outcomes if not o.accepted]
    if refused:
        raise RuntimeError(f"set-up submission refused: {refused[0].code}")


def naive_pick(policy: Policy, backend: str) -> m.Job | None:
    """The baseline: rescan every job and take this backend's oldest queued one."""
    best = None
    for job in policy.jobs.values():
        if (
            job.status == m.QUEUED
            and job.backend == backend
            and (best is None or job.key < best.key)
        ):
            best = job
    return best


class Picker:
    """Times single picks on one queued policy, restoring N queued jobs after each."""

    def __init__(self, policy: Policy, filler: QueueFiller, t: int) -> None:
        self.policy = policy
        self.filler = filler
        self.t = t + TICKS_PER_SECOND
        policy.run_instant(self.t)  # let anything due before the first measured instant pass
        self.lanes: dict[str, int] = {}
        self._evict = bytearray(EVICT_BYTES)

    def pick(
        self, rep: int, *, cold: bool = False, profiler: cProfile.Profile | None = None
    ) -> float:
        """Microseconds of one `run_instant` that resumes a backend and starts one job."""
        policy = self.policy
        name = BACKENDS[rep % len(BACKENDS)]
        if cold:  # stream through more memory than the CPU caches hold
            self._evict[:] = bytes(EVICT_BYTES)
        self.t += 1
        resume = [m.SetBackendStatus(name, m.ONLINE)]
        if profiler is not None:
            profiler.enable()
        start = time.perf_counter_ns()
        policy.run_instant(self.t, resume)
        elapsed = time.perf_counter_ns() - start
        if profiler is not None:
            profiler.disable()
        job = policy.backends[name].running
        if job is None:
            raise RuntimeError(f"resuming {name} started nothing")
        self.lanes[job.lane or "-"] = self.lanes.get(job.lane or "-", 0) + 1
        self.t += 1
        policy.run_instant(self.t, _undo(job, self.filler))
        return elapsed / 1000


def _time_naive(policy: Policy, rep: int) -> float:
    start = time.perf_counter_ns()
    naive_pick(policy, BACKENDS[rep % len(BACKENDS)])
    return (time.perf_counter_ns() - start) / 1000


def measure(n_jobs: int, reps: int, seed: int) -> DecisionRow:
    """Warm picks, then cold-cache picks, then the naive rescan, on one N-job queue.

    The passes are separate: interleaving the rescan with the picks would evict
    the policy's data from the CPU caches by an amount that grows with N.
    """
    policy, filler, t = queued_policy(n_jobs, seed)
    if _queued(policy) != n_jobs:
        raise RuntimeError(f"set-up queued {_queued(policy)} jobs, not {n_jobs}")
    sessions = sum(1 for s in policy.sessions.values() if s.state == m.OPEN and s.queued_count)
    picker = Picker(policy, filler, t)
    gc.collect()
    warm = [picker.pick(rep) for rep in range(reps)]
    cold = [picker.pick(rep, cold=True) for rep in range(reps)]
    naive = [_time_naive(policy, rep) for rep in range(reps)]
    if _queued(policy) != n_jobs:
        raise RuntimeError(f"{_queued(policy)} jobs queued after the picks, not {n_jobs}")
    return DecisionRow(n_jobs, sessions, warm, cold, naive, picker.lanes)


def profile_picks(n_jobs: int, picks: int, seed: int, path: Path) -> None:
    """cProfile `picks` warm picks on an `n_jobs` queue; stats to `path` (not timed)."""
    policy, filler, t = queued_policy(n_jobs, seed)
    picker = Picker(policy, filler, t)
    profiler = cProfile.Profile()
    for rep in range(picks):
        picker.pick(rep, profiler=profiler)
    profiler.dump_stats(path)


def _queued(policy: Policy) -> int:
    return sum(1 for job in policy.jobs.values() if job.status == m.QUEUED)


def _undo(job: m.Job, filler: QueueFiller) -> list[m.Action]:
    """Cancel the started job (and its session), pause again, refill the queue to N."""
    actions: list[m.Action] = [m.CancelJob(job.id)]
    removed = 1
    if job.session is not None:
        actions.append(m.CancelSession(job.session.id))
        removed += job.session.queued_count
    actions.append(m.SetBackendStatus(job.backend, m.PAUSED))
    actions += [filler.plain(job.backend) for _ in range(removed)]
    return actions


def summary(values: list[float]) -> tuple[float, float]:
    return percentile(values, 50), percentile(values, 95)
