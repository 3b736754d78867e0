"""The started jobs the leader's process executes, and when each one ends.

The policy says which jobs run; `Executions` makes sure each is executed once: in a
capped child process that one of this process's threads waits for
(`scheduler.caps`), in the ticking thread (`inline`, tests), or by the executor
workers it hands the job to (`QDASH_EXECUTORS=workers`, `scheduler.dispatch`).
An executed job is reported to the step at the end of its modeled QPU time. The
`Execution` ledger keeps each attempt, so one whose process died counts as
having stopped an executor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from scheduler import bulk, caps, models
from scheduler.caps import EXECUTION_FAILED
from scheduler.clock import Clock, from_ticks, ticks_span
from scheduler.cluster import process_name
from scheduler.devices.device import DEVICE_FIELDS, execute_kwargs
from scheduler.policy import Policy
from scheduler.policy import model as m
from scheduler.sandbox import LimitExceeded

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Finish:
    """An executed job waiting for the end of its modeled QPU time."""

    at: datetime
    status: str
    error: str | None = None


# (program_id, params, *, max_memory_mb) -> encoded PrimitiveResult. Outside `inline`
# mode it runs in a child process, so it must be importable by name.
Execute = Callable[..., str]
# A step's reports of ended jobs, each with the finish it came from.
Reports = list[tuple[tuple[str, Finish], m.FinishJob]]


def _aer_execute() -> Execute:
    from scheduler.executor import execute

    return execute


class Executions:
    """Executes every running job nobody executes yet, and holds each one's end until due."""

    def __init__(
        self,
        *,
        clock: Clock,
        execute: Execute | None = None,
        workers: int = 1,
        inline: bool = False,
        executors: str | None = None,
        on_ready: Callable[[], None] = lambda: None,
    ) -> None:
        self.clock = clock
        self.execute = execute
        self.on_ready = on_ready  # an execution is ready to report (called from its thread)
        # "workers": executor processes run the circuits (scheduler.dispatch); "inline":
        # the ticking thread does, uncapped (tests); otherwise this process does, each
        # execution in a capped child process (scheduler.caps) that a thread waits for.
        self.queue = None
        if (executors or settings.QDASH_EXECUTORS) == "workers":
            from scheduler.dispatch import QueueDispatch

            self.queue = QueueDispatch()
        threads = inline or self.queue is not None
        self._pool = None if threads else ThreadPoolExecutor(workers, "qdash-executor")
        self._children = None if threads else caps.sandbox(workers=workers)
        if self._children is not None:
            self._children.start()
        self._child_runs: dict[str, Future[Any]] = {}  # uid -> its child's run
        self._closing = False
        self._executing: dict[str, Future[Finish | None] | None] = {}
        self._finishes: dict[str, Finish] = {}
        self._guard = threading.Lock()

    def due(self, now: datetime) -> Reports:
        """The executed jobs whose modeled QPU time is over at `now`, as the step's reports
        (the executor workers' new results read first); they leave the pending ones."""
        if self.queue is not None:
            self._collect_results(now)
        with self._guard:
            due = [uid for uid, finish in self._finishes.items() if finish.at <= now]
            finishes = [(uid, self._finishes.pop(uid)) for uid in due]
        return [((uid, f), m.FinishJob(uid, f.status, f.error)) for uid, f in finishes]

    def report_again(self, finishes: Reports) -> None:
        """A step that failed did not report `finishes`: the next one does."""
        with self._guard:
            self._finishes.update({uid: finish for (uid, finish), _ in finishes})

    def reported(self, finishes: Reports) -> None:
        """A step reported `finishes`: their jobs are no longer executed here."""
        for (uid, _), _ in finishes:
            self._executing.pop(uid, None)

    def adopt(self, policy: Policy) -> None:
        """Execute every running job nobody executes yet (new, or left by a restart)."""
        running = {b.running.id: b.running for b in policy.backends.values() if b.running}
        if self.queue is not None:
            self.queue.forget(set(running))
        for uid in list(self._executing):
            if uid not in running:  # cancelled, failed at its limit, session gone
                self._executing.pop(uid)
                with self._guard:
                    self._finishes.pop(uid, None)
                child = self._child_runs.pop(uid, None)
                if child is not None:
                    child.cancel()  # kills the child process: the CPU is not wasted
        handed = self.queue.jobs if self.queue is not None else {}
        with self._guard:
            ending = set(self._finishes)  # executed; ending when their modeled time is over
        new = [
            (uid, job)
            for uid, job in running.items()
            if uid not in self._executing
            and uid not in handed
            and uid not in ending
            and job.duration is None
        ]
        if not new:
            return
        # One read for every job to execute (its inputs, and a result a restart left).
        rows = (
            models.Job.objects.filter(uid__in=[uid for uid, _ in new])
            .select_related("backend")
            .only("pk", "uid", "program_id", "params", "result", "error_message", *DEVICE_FIELDS)
        )
        inputs = {row.uid: row for row in rows}
        kept: dict[str, list[tuple[int, tuple[str]]]] = {"result": [], "error_message": []}
        hand_out = []
        for uid, job in new:
            assert job.started_at is not None
            end = from_ticks(job.started_at) + (ticks_span(job.expected) or timedelta(0))
            row = inputs[uid]
            if self.queue is not None:
                if row.result is None and not row.error_message:
                    hand_out.append((uid, end))
                else:  # executed before the leader changed: end it as reported
                    self.queue.jobs[uid] = end
            elif self._pool is None:  # inline: the writes of all of them in one statement each
                self._executing[uid] = None
                finish, column, value = self._execute(row, end)
                if column:
                    kept[column].append((row.pk, (value,)))
                self._finished(uid, finish)
            else:
                span = ticks_span(job.limit)
                limit = None if span is None else span.total_seconds()
                future = self._pool.submit(self._run, row, end, caps.wall_seconds(limit))
                self._executing[uid] = future
                future.add_done_callback(partial(self._collect, uid))
        for column, values in kept.items():
            bulk.update(models.Job, [column], values, where={"status": m.RUNNING})
        if self.queue is not None:
            self.queue.hand_out(hand_out)

    def recover(self) -> None:
        """Jobs whose executor worker is gone are handed out again, or fail as lost (they
        end at the next tick)."""
        if self.queue is not None and self.queue.recover(time.monotonic()):
            self._collect_results(self.clock.now())

    def ends(self) -> list[datetime]:
        """When the executed jobs end (their modeled QPU time over)."""
        with self._guard:
            return [f.at for f in self._finishes.values()]

    def detail(self) -> dict[str, Any]:
        """What the cluster page shows of the executions."""
        return {
            "executors": "workers" if self.queue is not None else "inline",
            "running": len(self.queue.jobs if self.queue is not None else self._executing),
            # jobs whose circuits run in this process's threads (no executor workers)
            "executing": sorted(self._executing) if self.queue is None else [],
        }

    def _collect_results(self, now: datetime) -> None:
        """The handed-out jobs an executor has written a result or an error for."""
        assert self.queue is not None
        for uid, end, code, _ in self.queue.results():
            if code is None:
                self._finished(uid, Finish(max(end, now), m.COMPLETED))
            else:
                self._finished(uid, Finish(now, m.FAILED, code))

    def _run(self, row: models.Job, end: datetime, seconds: float) -> Finish | None:
        """Execute one job's primitive in a capped child process and keep the result (in an
        executor thread). None: the run was abandoned (the job stopped running, or this
        process stops) and nothing was written."""
        try:
            if row.result is not None:  # executed before a restart: the result is kept
                return Finish(max(end, self.clock.now()), m.COMPLETED)
            ledger = Ledger.start(row.pk)
            if ledger.stopped >= int(settings.QDASH_EXECUTION["ATTEMPTS"]):
                finish, column, value = self._poisoned(row, ledger)
            else:
                outcome = self._in_child(row, end, seconds)
                if outcome is None:
                    ledger.end(models.Execution.Outcome.ABANDONED)
                    return None
                finish, column, value = outcome
                ledger.end(_ledger_outcome(finish))
            if self._closing:
                return None
            bulk.update(models.Job, [column], [(row.pk, (value,))], where={"status": m.RUNNING})
            return finish
        finally:
            close_old_connections()

    def _in_child(
        self, row: models.Job, end: datetime, seconds: float
    ) -> tuple[Finish, str, str] | None:
        assert self._children is not None
        execute = self.execute or _aer_execute()
        child = self._children.schedule(
            execute,
            (row.program_id, row.params),
            {"max_memory_mb": caps.memory_mb(), **execute_kwargs(row.backend)},
            seconds=seconds,
        )
        self._child_runs[row.uid] = child
        try:
            result = self._children.outcome(child)
        except LimitExceeded as error:
            if child.cancelled() or self._closing:
                return None
            log.warning("job %s stopped at a cap: %s", row.uid, error.message)
            message = f"Execution limit exceeded: {error.message}."
            return (
                Finish(self.clock.now(), m.FAILED, caps.EXECUTION_LIMIT_EXCEEDED),
                ("error_message"),
                message,
            )
        except Exception as error:  # noqa: BLE001 - any failure fails the job clearly
            if child.cancelled() or self._closing:
                return None
            log.info("job %s failed: %s", row.uid, error)
            return Finish(self.clock.now(), m.FAILED, EXECUTION_FAILED), "error_message", str(error)
        finally:
            self._child_runs.pop(row.uid, None)
        return Finish(max(end, self.clock.now()), m.COMPLETED), "result", result

    def _poisoned(self, row: models.Job, ledger: Ledger) -> tuple[Finish, str, str]:
        message = caps.poison_message(ledger.stopped)
        log.warning("job %s: %s", row.uid, message)
        ledger.end(models.Execution.Outcome.ABANDONED)
        return Finish(self.clock.now(), m.FAILED, caps.EXECUTOR_LOST), "error_message", message

    def _execute(self, row: models.Job, end: datetime) -> tuple[Finish, str, str]:
        """Run a job's primitive in this thread (inline): its end, and the column to store."""
        if row.result is not None:  # executed before a restart: the result is kept
            return Finish(max(end, self.clock.now()), m.COMPLETED), "", ""
        try:
            execute = self.execute or _aer_execute()
            result = execute(
                row.program_id,
                row.params,
                max_memory_mb=caps.memory_mb(),
                **execute_kwargs(row.backend),
            )
        except Exception as error:  # noqa: BLE001 - any failure fails the job clearly
            log.info("job %s failed: %s", row.uid, error)
            return Finish(self.clock.now(), m.FAILED, EXECUTION_FAILED), "error_message", str(error)
        return Finish(max(end, self.clock.now()), m.COMPLETED), "result", result

    def _collect(self, uid: str, future: Future[Finish | None]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        finish = future.result()
        if finish is not None:
            self._finished(uid, finish)

    def _finished(self, uid: str, finish: Finish) -> None:
        with self._guard:
            self._finishes[uid] = finish
        self.on_ready()

    def shutdown(self) -> None:
        """Stop at once: running executions are killed and left for the next leader (their
        ledger rows end as abandoned, so they do not count as having stopped an executor)."""
        self._closing = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for child in list(self._child_runs.values()):
            child.cancel()
        if self._children is not None:
            self._children.close()


def _ledger_outcome(finish: Finish) -> str:
    if finish.error == caps.EXECUTION_LIMIT_EXCEEDED:
        return models.Execution.Outcome.LIMIT
    if finish.status == m.COMPLETED:
        return models.Execution.Outcome.WRITTEN
    return models.Execution.Outcome.FAILED


class Ledger:
    """A job's execution attempts in this process, in the `Execution` ledger: an attempt
    whose process died leaves its row open, and counts as having stopped an executor."""

    def __init__(self, row: models.Execution, stopped: int) -> None:
        self.row = row
        self.stopped = stopped

    @classmethod
    def start(cls, job_pk: int) -> Ledger:
        earlier = models.Execution.objects.filter(job_id=job_pk)
        stopped = earlier.filter(ended_at__isnull=True).count()
        row = models.Execution.objects.create(
            job_id=job_pk,
            worker=process_name(),
            attempt=earlier.count() + 1,
            started_at=timezone.now(),
        )
        return cls(row, stopped)

    def end(self, outcome: str) -> None:
        models.Execution.objects.filter(pk=self.row.pk).update(
            ended_at=timezone.now(), outcome=outcome
        )
