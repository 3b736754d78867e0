"""Finished history for the history tests: jobs and charges written straight to the
tables (as the leader would have), and the raw records to check the rollups against."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from scheduler import models
from scheduler.policy import model as m
from tests.factories import BackendFactory, instance

PATHS = ("hubA/g/p", "hubA/g/q", "hubB/g/p")
BACKENDS = ("sim_a", "sim_b")
DAY0 = date(2025, 3, 1)  # a Saturday: a week report splits the days over two weeks


@dataclass(frozen=True)
class Raw:
    """One job or charge as written: what a raw computation of the report reads."""

    day: date
    instance: str
    backend: str
    status: str | None  # a job's final state (None: a hold charge alone)
    wait: float | None  # seconds from submitted to started (None: never started)
    run_us: int
    hold_us: int


def at(day: date, seconds: float) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=UTC) + timedelta(seconds=seconds)


def history(days: int = 4, per_day: int = 40, seed: int = 1) -> list[Raw]:
    """`per_day` finished jobs a day over `days` days from DAY0 (some cancelled before
    they started), each started job's run charge, and a hold charge now and then."""
    rng = random.Random(seed)
    nodes = {path: instance(path) for path in PATHS}
    backends = {name: BackendFactory(name=name) for name in BACKENDS}
    sessions = {
        (path, name): models.Session.objects.create(
            uid=f"s-{path}-{name}",
            backend=backends[name],
            instance=nodes[path],
            created_at=at(DAY0, 0),
            interactive_ttl=timedelta(seconds=60),
            state=m.CLOSED,
        )
        for path in PATHS
        for name in BACKENDS
    }
    raws, jobs, charges = [], [], []
    for d in range(days):
        day = DAY0 + timedelta(days=d)
        for n in range(per_day):
            path, name = rng.choice(PATHS), rng.choice(BACKENDS)
            ended = at(day, rng.uniform(1_000, 86_000))
            status = rng.choice([m.COMPLETED] * 6 + [m.FAILED, m.CANCELLED])
            started = None if status == m.CANCELLED and rng.random() < 0.5 else True
            run = rng.uniform(0.5, 300) if started else 0.0
            wait = rng.choice([0.001, rng.uniform(0, 5), rng.expovariate(1 / 600)])
            started_at = ended - timedelta(seconds=run) if started else None
            submitted = (started_at or ended) - timedelta(seconds=wait)
            job = models.Job(
                uid=f"job-{d}-{n}",
                backend=backends[name],
                instance=nodes[path],
                status=status,
                submitted_at=submitted,
                started_at=started_at,
                ended_at=ended,
                params={"pubs": [[f"circuit {d}-{n}"]]},
                result={"counts": n} if status == m.COMPLETED else None,
            )
            jobs.append(job)
            run_us = round(run * 1_000_000) if started else 0
            exact_wait = (started_at - submitted).total_seconds() if started_at else None
            raws.append(Raw(day, path, name, status, exact_wait, run_us, 0))
            if started:
                charges.append((job, ended, run_us))
            if n % 7 == 0:  # a session held the backend idle for a while
                hold_us = rng.randrange(1, 90_000_000)
                hold_end = at(day, rng.uniform(1_000, 86_000))
                charges.append((sessions[(path, name)], hold_end, hold_us))
                raws.append(Raw(day, path, name, None, None, 0, hold_us))
    models.Job.objects.bulk_create(jobs)
    for owner, ended, amount in charges:
        is_job = isinstance(owner, models.Job)
        models.UsageCharge.objects.create(
            instance=owner.instance,
            kind=models.UsageCharge.Kind.RUN if is_job else models.UsageCharge.Kind.HOLD,
            microseconds=amount,
            ended_at=ended,
            job=owner if is_job else None,
            session=None if is_job else owner,
        )
    return raws
