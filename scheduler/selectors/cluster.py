"""The cluster page: every process of the deployment as it last reported itself.

Reads the `Process` rows (one per web, scheduler, executor or embedded process),
the executors' ledger for the jobs each worker runs now, and the published
plan's header for its age. Like Slurm's `sinfo` or Flower's workers page, it
shows what each process said about itself and how long ago it said it; a row
whose heartbeat is old is marked as not responding (`cluster.is_stale`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from scheduler import models, plans
from scheduler.cluster import FORGET_SECONDS, STALE_BEATS, is_stale
from scheduler.plans import PlanView

Kind = models.Process.Kind


@dataclass(frozen=True)
class CurrentJob:
    """A job a process runs now: from the ledger (executors) or its own report (inline)."""

    uid: str
    attempt: int | None = None
    started_at: datetime | None = None
    running_for: timedelta | None = None


@dataclass(frozen=True)
class ProcessRow:
    """One process with what the page shows of it."""

    process: models.Process
    now: datetime  # when the page read it
    jobs: list[CurrentJob] = field(default_factory=list)

    @property
    def stale(self) -> bool:
        """Silent for longer than a few heartbeats: stopped, hung or cut off."""
        return is_stale(self.process, self.now)

    @property
    def heartbeat_age(self) -> timedelta:
        return max(self.now - self.process.heartbeat_at, timedelta(0))

    @property
    def up_for(self) -> timedelta:
        return max(self.now - self.process.started_at, timedelta(0))

    @property
    def leading_for(self) -> timedelta | None:
        since = self.process.leading_since
        return None if since is None else max(self.now - since, timedelta(0))

    @property
    def detail(self) -> dict[str, Any]:
        return self.process.detail if isinstance(self.process.detail, dict) else {}

    @property
    def role(self) -> str | None:
        """Schedulers (and embedded processes): "leader" or "standby"."""
        if self.process.kind not in (Kind.SCHEDULER, Kind.EMBEDDED):
            return None
        return "leader" if self.process.leading_since else "standby"

    @property
    def leading(self) -> bool:
        """Leads and still reports: the leader the cluster has now."""
        return self.role == "leader" and not self.stale

    @property
    def standby(self) -> dict[str, Any] | None:
        """A standby scheduler's warm memory: its lag behind the leader's journal."""
        value = self.detail.get("standby")
        return value if isinstance(value, dict) and not self.leading else None

    @property
    def concurrency(self) -> int | None:
        """How many jobs an executor worker runs at once (as it declared)."""
        value = self.detail.get("concurrency")
        return value if isinstance(value, int) else None

    @property
    def websockets(self) -> int | None:
        """Websocket clients connected to a web (or embedded) process."""
        value = self.detail.get("websockets")
        return value if isinstance(value, int) else None


@dataclass(frozen=True)
class Cluster:
    now: datetime
    schedulers: list[ProcessRow]  # the leader first, then standbys; stale rows last
    executors: list[ProcessRow]
    web: list[ProcessRow]
    embedded: list[ProcessRow]  # `serve`: web, scheduler and executor in one process
    plan: PlanView | None

    @property
    def leader(self) -> ProcessRow | None:
        """The process leading now (the newest lead among those that still report)."""
        leading = [row for row in self.schedulers + self.embedded if row.leading]
        return max(leading, key=lambda row: row.process.leading_since or self.now, default=None)

    @property
    def interval(self) -> float:
        """Seconds between a process's heartbeats."""
        return float(settings.QDASH_PROCESS_HEARTBEAT)

    @property
    def stale_after(self) -> float:
        """Seconds without a heartbeat after which a process is shown as not responding."""
        return STALE_BEATS * self.interval

    @property
    def forget_after(self) -> float:
        """Minutes after which the leader deletes a silent process's row."""
        return FORGET_SECONDS / 60

    @property
    def plan_age(self) -> timedelta | None:
        return None if self.plan is None else self.plan.age(self.now)

    @property
    def plan_stale(self) -> bool:
        return self.plan is not None and self.plan.stale(self.now)

    @property
    def web_processes(self) -> int:
        """Processes that serve pages and websockets."""
        return len(self.web) + len(self.embedded)

    @property
    def websockets(self) -> int:
        return sum(row.websockets or 0 for row in self.web + self.embedded)

    @property
    def empty(self) -> bool:
        return not (self.schedulers or self.executors or self.web or self.embedded)


def _order(row: ProcessRow) -> tuple[bool, bool, str]:
    return (row.stale, row.role != "leader", row.process.name)


def cluster_processes(*, now: datetime | None = None) -> Cluster:
    """Every process row, grouped by kind, with executors' current jobs and the plan."""
    now = now or timezone.now()
    processes = list(models.Process.objects.all())
    names = [p.name for p in processes if p.kind == Kind.EXECUTOR]
    running: dict[str, list[CurrentJob]] = defaultdict(list)
    if names:
        attempts = (
            # Open attempts of running jobs: read through the jobs' status index, so the
            # page costs the same however long the ledger grows.
            models.Execution.objects.filter(
                job__status=models.Job.Status.RUNNING,
                worker__in=names,
                ended_at__isnull=True,
                outcome="",
            )
            .values_list("worker", "job__uid", "attempt", "started_at")
            .order_by("started_at", "id")
        )
        for worker, uid, attempt, started_at in attempts:
            running[worker].append(
                CurrentJob(uid, attempt, started_at, max(now - started_at, timedelta(0)))
            )
    rows: dict[str, list[ProcessRow]] = defaultdict(list)
    for process in processes:
        if process.kind == Kind.EXECUTOR:
            jobs = running.get(process.name, [])
        else:  # a scheduler running circuits in its own threads reports their jobs
            reported = process.detail.get("executing") if isinstance(process.detail, dict) else []
            jobs = [CurrentJob(str(uid)) for uid in reported or []]
        rows[process.kind].append(ProcessRow(process=process, now=now, jobs=jobs))
    return Cluster(
        now=now,
        schedulers=sorted(rows[Kind.SCHEDULER], key=_order),
        executors=sorted(rows[Kind.EXECUTOR], key=_order),
        web=sorted(rows[Kind.WEB], key=_order),
        embedded=sorted(rows[Kind.EMBEDDED], key=_order),
        plan=plans.current(),
    )
