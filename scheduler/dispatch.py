"""The leader's side of the executor queue: hand started jobs to executor workers,
see their results, and recover the jobs of workers that died.

With `QDASH_EXECUTORS=workers` the leader runs no circuits. For each job it
starts it defers procrastinate's `execute_job` (`scheduler.tasks`); a worker
writes the result into the job's row (`scheduler.execution`) and wakes the
leader, which reads which of its running jobs have a result or an error (a query
over the running jobs, at most one per backend) and ends them.

Every `RECOVER_SECONDS` the leader also
- hands to another worker the job of a worker whose heartbeat stopped
  (procrastinate's stalled jobs), and fails a job whose workers were lost
  `ATTEMPTS` times with `executor_lost`;
- defers again a running job that has no result and no task waiting or running
  (its task was lost between the start's commit and the deferral, or its worker
  gave it up after losing its lock).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from procrastinate import exceptions, sql
from procrastinate.contrib.django import app
from procrastinate.contrib.django.models import ProcrastinateJob

from scheduler import models
from scheduler.caps import EXECUTION_FAILED, EXECUTION_LIMIT_EXCEEDED, EXECUTOR_LOST
from scheduler.execution import unfinished
from scheduler.policy import model as m
from scheduler.tasks import QUEUE, TASK, execute_job

log = logging.getLogger(__name__)
RECOVER_SECONDS = 2.0
ACTIVE = ("todo", "doing")


class QueueDispatch:
    """The running jobs the leader handed to executors, with their modeled ends."""

    def __init__(self) -> None:
        conf = settings.QDASH_EXECUTION
        self.stalled_seconds = float(conf["STALLED_SECONDS"])
        self.attempts = int(conf["ATTEMPTS"])
        self.jobs: dict[str, datetime] = {}  # uid -> end of its modeled QPU time
        self.lost: dict[str, str] = {}  # uid -> error message, for jobs failed here
        self._recovered_at: float | None = None

    def hand_out(self, jobs: Iterable[tuple[str, datetime]]) -> None:
        """Defer `execute_job` for each (uid, end) that has no task waiting or running."""
        ends = dict(jobs)
        if ends:
            self.jobs.update(ends)
            self._defer(ends)

    def _defer(self, uids: Iterable[str]) -> None:
        uids = list(uids)
        jobs: Any = getattr(ProcrastinateJob, "objects")  # noqa: B009 - untyped read-only model
        queued = set(jobs.filter(lock__in=uids, status__in=ACTIVE).values_list("lock", flat=True))
        for uid in uids:
            if uid in queued:
                continue
            with contextlib.suppress(exceptions.AlreadyEnqueued):
                execute_job.configure(lock=uid, queueing_lock=uid).defer(uid=uid)

    def forget(self, running: set[str]) -> None:
        """Drop the jobs that no longer run (cancelled, at their limit, ended)."""
        for uid in [uid for uid in self.jobs if uid not in running]:
            del self.jobs[uid]
            self.lost.pop(uid, None)

    def results(self) -> list[tuple[str, datetime, str | None, str]]:
        """The handed-out jobs that have a result or an error now: (uid, end, error code,
        message)."""
        if not self.jobs:
            return []
        rows = list(
            models.Job.objects.filter(uid__in=list(self.jobs), status=m.RUNNING)
            .filter(Q(result__isnull=False) | ~Q(error_message=""))
            .values_list("uid", "error_message")
        )
        limited = set(
            models.Execution.objects.filter(
                job__uid__in=[uid for uid, message in rows if message],
                outcome=models.Execution.Outcome.LIMIT,
            ).values_list("job__uid", flat=True)
        )
        out = []
        for uid, message in rows:
            code = None
            if uid in limited:
                code = EXECUTION_LIMIT_EXCEEDED
            elif message:
                code = EXECUTOR_LOST if uid in self.lost else EXECUTION_FAILED
            out.append((uid, self.jobs.pop(uid), code, message))
            self.lost.pop(uid, None)
        return out

    # --------------------------------------------------------------- recovery
    def recover(self, monotonic: float) -> bool:
        """Retry or fail the jobs of stalled workers; defer lost tasks. True if it ran."""
        if self._recovered_at is not None and monotonic - self._recovered_at < RECOVER_SECONDS:
            return False
        self._recovered_at = monotonic
        connector = app.connector.get_sync_connector()
        stalled = connector.execute_query_all(
            sql.queries["select_stalled_jobs_by_heartbeat"],
            queue=QUEUE,
            task_name=TASK,
            seconds_since_heartbeat=self.stalled_seconds,
        )
        for row in stalled:
            self._stalled(connector, row)
        self._defer_lost()
        return True

    def _stalled(self, connector: object, row: dict) -> None:
        args = row.get("args") or {}
        if isinstance(args, str):  # JSON text through Django's connection
            args = json.loads(args)
        uid = str(args.get("uid", ""))
        job = models.Job.objects.filter(uid=uid).only("pk").first()
        # The attempt its worker was running is lost: its ledger row never ended.
        lost = 0
        if job is not None:
            models.Execution.objects.filter(job=job, ended_at__isnull=True, outcome="").update(
                outcome=models.Execution.Outcome.LOST
            )
            lost = models.Execution.objects.filter(
                job=job, outcome=models.Execution.Outcome.LOST
            ).count()
        if job is None or lost < self.attempts:
            log.warning("job %s: its executor stopped; handing it to another", uid)
            connector.execute_query(  # type: ignore[attr-defined]
                sql.queries["retry_job"],
                job_id=row["id"],
                retry_at=timezone.now(),
                new_priority=None,
                new_queue_name=None,
                new_lock=None,
            )
            return
        message = f"The executors running this job stopped {lost} times; it was not run again."
        connector.execute_query(  # type: ignore[attr-defined]
            sql.queries["finish_job"], job_id=row["id"], status="failed", delete_job=False
        )
        written = models.Job.objects.filter(Q(pk=job.pk) & unfinished()).update(
            error_message=message
        )
        if written:
            log.warning("job %s: failed, %s", uid, message)
            self.lost[uid] = message

    def _defer_lost(self) -> None:
        if not self.jobs:
            return
        unfinished_uids = set(
            models.Job.objects.filter(Q(uid__in=list(self.jobs)) & unfinished()).values_list(
                "uid", flat=True
            )
        )
        if unfinished_uids:
            self._defer(unfinished_uids)
