"""Executor workers: run a started job's circuits, write its result once, wake the leader.

The leader decides what starts; it hands each started job to the executors
through procrastinate's PostgreSQL queue (`scheduler.tasks`). A worker runs the
job's circuits in a capped child process (`scheduler.sandbox`) and writes the
result or the error into the job's row, on condition that the job is still
running and has neither yet, so a result is written once. The leader sees it at
its next step and ends the job when its modeled QPU time is over.

A job never runs twice at the same time. Whoever runs it holds a PostgreSQL
advisory lock named after the job, on a connection of its own, for the whole
run. A worker whose lock connection breaks stops the run at once (it kills the
child process): its lock is gone and another worker may take the job. The
`Execution` ledger records every attempt before it starts running, with the lock
checked after that write; a holder that finds an earlier attempt in the ledger
waits `GRACE_SECONDS` before it starts, longer than an earlier holder that lost
its lock needs to notice and stop.

If a worker dies, procrastinate's heartbeat shows it and the leader hands the
job to another worker (`scheduler.dispatch`), up to `ATTEMPTS` attempts; then
the job fails with `executor_lost`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from scheduler import caps, models, wakeup
from scheduler.caps import EXECUTION_FAILED, EXECUTOR_LOST
from scheduler.cluster import process_name
from scheduler.devices.device import DEVICE_FIELDS, execute_kwargs
from scheduler.pg import alive, connect
from scheduler.policy import model as m
from scheduler.sandbox import LimitExceeded

log = logging.getLogger(__name__)
LOCK_SPACE = 0x71DA6  # pg_advisory_lock(LOCK_SPACE, job pk): the job's execution lock
CHECK_SECONDS = 0.25  # how often a running attempt checks its lock connection
STATUS_SECONDS = 2.0  # how often it checks that the job still runs (cancelled, timed out)
__all__ = ["EXECUTION_FAILED", "EXECUTOR_LOST", "LOCK_SPACE", "Attempt", "Worker", "unfinished"]


def unfinished() -> Q:
    """Running jobs nobody has written a result or an error for yet."""
    return Q(status=m.RUNNING, result__isnull=True, error_message="")


@dataclass
class Attempt:
    uid: str
    attempt: int = 1


class Worker:
    """What one executor process needs to run jobs: its child processes, its lock
    connections (one per thread) and its name in the ledger."""

    def __init__(
        self,
        *,
        concurrency: int = 1,
        memory_mb: int | None = None,
        grace: float | None = None,
        execute: Callable[..., str] | None = None,
    ) -> None:
        from scheduler.executor import execute as aer_execute

        self.name = process_name()
        self.concurrency = concurrency
        # per job: Aer's cap, and the child's memory (scheduler.caps)
        self.memory_mb = caps.memory_mb() if memory_mb is None else memory_mb
        conf = settings.QDASH_EXECUTION
        self.grace = float(conf["GRACE_SECONDS"]) if grace is None else grace
        self.execute = execute or aer_execute  # module-level: it runs in a child process
        self.sandbox = caps.sandbox(workers=concurrency, memory=self.memory_mb)
        self.sandbox.start()
        self._idle: list[psycopg.Connection[Any]] = []  # lock connections not in use
        self._idle_guard = threading.Lock()
        self.running: dict[str, float] = {}  # uid -> monotonic start (the cluster page)

    # ---------------------------------------------------------------- one job
    def run(self, attempt: Attempt) -> str:
        """Run one job if it still needs running; returns what became of the attempt."""
        uid = attempt.uid
        row = models.Job.objects.filter(Q(uid=uid) & unfinished()).only("pk").first()
        if row is None:
            return "skipped"  # ended, cancelled, or run by an earlier attempt
        lock = self._lock_connection()
        if not self._take_lock(lock, row.pk, uid):
            self._put_back(lock)
            return "skipped"
        try:
            if models.Execution.objects.filter(job_id=row.pk).exists():
                time.sleep(self.grace)  # an earlier holder that lost its lock stops meanwhile
            job = (
                models.Job.objects.filter(Q(pk=row.pk) & unfinished())
                .select_related("backend")
                .only("pk", "uid", "program_id", "params", "runtime_limit", *DEVICE_FIELDS)
                .first()
            )
            if job is None:
                return "skipped"
            ledger = models.Execution.objects.create(
                job_id=job.pk, worker=self.name, attempt=attempt.attempt, started_at=timezone.now()
            )
            if not alive(lock):  # lost the lock before the ledger showed this attempt
                models.Execution.objects.filter(pk=ledger.pk).update(
                    ended_at=timezone.now(), outcome=models.Execution.Outcome.ABANDONED
                )
                return models.Execution.Outcome.ABANDONED
            self.running[uid] = time.monotonic()
            try:
                outcome = self._execute(job, lock, ledger.pk)
            finally:
                self.running.pop(uid, None)
            models.Execution.objects.filter(pk=ledger.pk).update(
                ended_at=timezone.now(), outcome=outcome
            )
            if outcome in (models.Execution.Outcome.WRITTEN, models.Execution.Outcome.FAILED):
                wakeup.wake()
            return outcome
        finally:
            self._release(lock, row.pk)

    def _execute(self, job: models.Job, lock: psycopg.Connection[Any], ledger: int) -> str:
        limit = job.runtime_limit.total_seconds() if job.runtime_limit else None
        future = self.sandbox.schedule(
            self.execute,
            (job.program_id, job.params),
            {"max_memory_mb": self.memory_mb, **execute_kwargs(job.backend)},
            seconds=caps.wall_seconds(limit),
        )
        checked = time.monotonic()
        while True:
            try:
                result = self.sandbox.outcome(future, timeout=CHECK_SECONDS)
                column, value = "result", result
                break
            except TimeoutError:
                pass
            except LimitExceeded as error:
                column, value = "limit", f"Execution limit exceeded: {error.message}."
                break
            except Exception as error:  # noqa: BLE001 - the circuits failed: the job fails
                column, value = "error_message", " ".join(str(error).split())[:1000]
                break
            if not alive(lock):
                future.cancel()  # kills the child: another worker may hold the lock soon
                log.warning("job %s: lost the execution lock; stopped", job.uid)
                return models.Execution.Outcome.ABANDONED
            if time.monotonic() - checked > STATUS_SECONDS:
                checked = time.monotonic()
                if not models.Job.objects.filter(Q(pk=job.pk) & unfinished()).exists():
                    future.cancel()  # cancelled, or over its time limit: stop wasting the CPU
                    return models.Execution.Outcome.ABANDONED
        close_old_connections()  # a connection that broke while the circuits ran
        with transaction.atomic():  # the leader reads the ledger's word with the error
            written = models.Job.objects.filter(Q(pk=job.pk) & unfinished()).update(
                **{"result" if column == "result" else "error_message": value}
            )
            if written and column == "limit":
                models.Execution.objects.filter(pk=ledger).update(
                    outcome=models.Execution.Outcome.LIMIT
                )
        if not written:
            return models.Execution.Outcome.DISCARDED
        if column == "result":
            return models.Execution.Outcome.WRITTEN
        log.info("job %s failed: %s", job.uid, value)
        if column == "limit":
            return models.Execution.Outcome.LIMIT
        return models.Execution.Outcome.FAILED

    # ------------------------------------------------------------------ locks
    def _lock_connection(self) -> psycopg.Connection[Any]:
        """A connection of this worker's own for one job's lock (reused between jobs)."""
        while True:
            with self._idle_guard:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return connect(application_name="qdash-executor-lock")
            if alive(conn):
                return conn
            conn.close()

    def _put_back(self, conn: psycopg.Connection[Any]) -> None:
        if conn.closed:
            return
        with self._idle_guard:
            self._idle.append(conn)

    def _take_lock(self, conn: psycopg.Connection[Any], pk: int, uid: str) -> bool:
        """Wait for the job's lock while the job still needs running."""
        while True:
            row = conn.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_SPACE, pk]).fetchone()
            if row and row[0]:
                return True
            time.sleep(CHECK_SECONDS)
            if not models.Job.objects.filter(Q(pk=pk) & unfinished()).exists():
                return False
            close_old_connections()

    def _release(self, conn: psycopg.Connection[Any], pk: int) -> None:
        try:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", [LOCK_SPACE, pk])
        except psycopg.Error:  # the connection broke: the lock went with it
            conn.close()
        self._put_back(conn)

    def close(self) -> None:
        self.sandbox.close()
        with self._idle_guard:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
