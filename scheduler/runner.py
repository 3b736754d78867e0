"""The live scheduler: steps the leader, executes started jobs, reports their end,
and publishes the plan.

`Scheduler` is a set of single-step methods a test can call one at a time on a
fake clock; `scheduler_loop` drives it inside the server's event loop, waking
at the next due instant, when a job's execution is ready, or when something
sends a wake-up on the channel layer (`wake()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import close_old_connections

from scheduler import bulk, metrics, models
from scheduler.clock import Clock, SystemClock, from_ticks, ticks_span, to_ticks
from scheduler.engine import Leader, StepReport
from scheduler.leader import LeaderLock
from scheduler.plans import Planner
from scheduler.policy import Policy
from scheduler.policy import model as m
from scheduler.wakeup import CHANNEL as wakeup_channel

log = logging.getLogger(__name__)
PLAN_RETRY = 0.25  # seconds: how soon the loop looks again while a plan is due
EXECUTION_FAILED = "execution_failed"


@dataclass(frozen=True)
class Finish:
    """An executed job waiting for the end of its modeled QPU time."""

    at: datetime
    status: str
    error: str | None = None


Execute = Callable[[str, dict], str]  # (program_id, params) -> encoded PrimitiveResult


def _default_execute(program_id: str, params: dict) -> str:
    from scheduler.executor import execute

    return execute(program_id, params)


class Scheduler:
    """Runs the queue: one `tick()` applies everything due and hands out work."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        execute: Execute = _default_execute,
        workers: int = 1,
        inline: bool = False,
        leader: Leader | None = None,
        planner: Planner | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.leader = leader or Leader()
        self.planner = planner or Planner()
        self.execute = execute
        self.inline = inline  # execute in the ticking thread (tests)
        self.on_ready: Callable[[], None] = lambda: None
        self._pool = None if inline else ThreadPoolExecutor(workers, "qdash-executor")
        self._executing: dict[str, Future[Finish] | None] = {}
        self._finishes: dict[str, Finish] = {}
        self._guard = threading.Lock()

    def tick(self) -> datetime | None:
        """Report finished jobs, apply what is due now, start executing new jobs.

        Returns when the next tick is due (None: only a wake-up can bring work).
        """
        now = self.clock.now()
        ticks = to_ticks(now)
        finishes = self._due_finishes(now)
        start = time.perf_counter()
        try:
            report = self.leader.step(
                ticks, [(ticks, [f for _, f in finishes])] if finishes else []
            )
        except BaseException:
            with self._guard:  # reported again by the next tick
                self._finishes.update({uid: finish for (uid, finish), _ in finishes})
            raise
        for (uid, _), _ in finishes:
            self._executing.pop(uid, None)
        metrics.observe_step(report.instant.events, time.perf_counter() - start)
        log_step(report, finishes=len(finishes))
        policy = self.leader.policy
        assert policy is not None
        if report.changed:
            self.planner.changed()
        self._adopt(policy)
        return self._next_wake(policy)

    def publish_plan(self) -> bool:
        """Publish a new plan if one is due (something changed, the last is a second old)."""
        policy = self.leader.policy
        if policy is None or not self.planner.due():
            return False
        self.planner.publish(policy, to_ticks(self.clock.now()))
        return True

    def lost_lead(self) -> None:
        """Another process leads now: forget the state; reload it when leading again."""
        self.leader.policy = None

    def _due_finishes(self, now: datetime) -> list[tuple[tuple[str, Finish], m.FinishJob]]:
        with self._guard:
            due = [uid for uid, finish in self._finishes.items() if finish.at <= now]
            finishes = [(uid, self._finishes.pop(uid)) for uid in due]
        return [((uid, f), m.FinishJob(uid, f.status, f.error)) for uid, f in finishes]

    def _adopt(self, policy: Policy) -> None:
        """Execute every running job nobody executes yet (new, or left by a restart)."""
        running = {b.running.id: b.running for b in policy.backends.values() if b.running}
        for uid in list(self._executing):
            if uid not in running:  # cancelled, failed at its limit, session gone
                self._executing.pop(uid)
                with self._guard:
                    self._finishes.pop(uid, None)
        new = [
            (uid, job)
            for uid, job in running.items()
            if uid not in self._executing and job.duration is None
        ]
        if not new:
            return
        # One read for every job to execute (its inputs, and a result a restart left).
        rows = models.Job.objects.filter(uid__in=[uid for uid, _ in new]).only(
            "uid", "program_id", "params", "result"
        )
        inputs = {row.uid: row for row in rows}
        kept: dict[str, list[tuple[int, tuple[str]]]] = {"result": [], "error_message": []}
        for uid, job in new:
            assert job.started_at is not None
            end = from_ticks(job.started_at) + (ticks_span(job.expected) or timedelta(0))
            row = inputs[uid]
            if self._pool is None:  # inline: the writes of all of them in one statement each
                self._executing[uid] = None
                finish, column, value = self._execute(row, end)
                if column:
                    kept[column].append((row.pk, (value,)))
                self._finished(uid, finish)
            else:
                future = self._pool.submit(self._run, row, end)
                self._executing[uid] = future
                future.add_done_callback(partial(self._collect, uid))
        for column, values in kept.items():
            bulk.update(models.Job, [column], values, where={"status": m.RUNNING})

    def _run(self, row: models.Job, end: datetime) -> Finish:
        """Execute one job's primitive and keep the result (in an executor thread)."""
        try:
            finish, column, value = self._execute(row, end)
            if column:
                bulk.update(models.Job, [column], [(row.pk, (value,))], where={"status": m.RUNNING})
            return finish
        finally:
            close_old_connections()

    def _execute(self, row: models.Job, end: datetime) -> tuple[Finish, str, str]:
        """Run a job's primitive: its end, and the column to store (result or error)."""
        if row.result is not None:  # executed before a restart: the result is kept
            return Finish(max(end, self.clock.now()), m.COMPLETED), "", ""
        try:
            result = self.execute(row.program_id, row.params)
        except Exception as error:  # noqa: BLE001 - any failure fails the job clearly
            log.info("job %s failed: %s", row.uid, error)
            return Finish(self.clock.now(), m.FAILED, EXECUTION_FAILED), "error_message", str(error)
        return Finish(max(end, self.clock.now()), m.COMPLETED), "result", result

    def _collect(self, uid: str, future: Future[Finish]) -> None:
        if not future.cancelled():
            self._finished(uid, future.result())

    def _finished(self, uid: str, finish: Finish) -> None:
        with self._guard:
            self._finishes[uid] = finish
        self.on_ready()

    def _next_wake(self, policy: Policy) -> datetime | None:
        due = policy.next_due()
        candidates = [from_ticks(due)] if due is not None else []
        with self._guard:
            candidates += [f.at for f in self._finishes.values()]
        return min(candidates) if candidates else None

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.planner.close()


steps_log = logging.getLogger("scheduler.steps")


def log_step(report: StepReport, *, finishes: int) -> None:
    """One logfmt line per step that did something, with its phases (as Kueue logs its
    scheduling cycles); an idle step only at debug level."""
    events = report.instant.events
    started = sum(1 for e in events if e.kind == "job_started")
    ended = sum(1 for e in events if e.kind == "job_ended")
    timers = sum(1 for e in events if e.kind == "timer_fired")
    busy = report.inputs or finishes or events
    phases = " ".join(f"{name}_ms={seconds * 1000:.1f}" for name, seconds in report.phases.items())
    steps_log.log(
        logging.INFO if busy else logging.DEBUG,
        "step inputs=%d finishes=%d started=%d ended=%d timers=%d refused=%d events=%d %s",
        report.inputs,
        finishes,
        started,
        ended,
        timers,
        report.refused,
        len(events),
        phases,
    )


async def scheduler_loop(
    scheduler: Scheduler,
    *,
    lock: LeaderLock | None = None,
    poll: float = 5.0,
    wakeup: asyncio.Event | None = None,
) -> None:
    """Tick whenever something is due or a wake-up arrives; at least every `poll` s.

    With a `lock`, tick only while this process is the leader; otherwise wait
    as a standby and try again every `poll` seconds. Wake-ups come from the
    channel layer, or, when a `wakeup` event is given, from whoever sets it (a
    channel worker's consumer).
    """
    loop = asyncio.get_running_loop()
    listen = wakeup is None
    wakeup = wakeup or asyncio.Event()

    def ready() -> None:
        loop.call_soon_threadsafe(wakeup.set)

    scheduler.on_ready = ready
    listener = asyncio.ensure_future(_listen(wakeup)) if listen else None
    tick = sync_to_async(scheduler.tick, thread_sensitive=True)
    publish = sync_to_async(scheduler.publish_plan, thread_sensitive=True)
    is_leader = sync_to_async(lock.acquire if lock else lambda: True, thread_sensitive=True)
    leading = False
    try:
        while True:
            wakeup.clear()
            timeout = poll
            if await is_leader():
                if not leading:
                    scheduler.lost_lead()  # whatever was in memory may be old: load afresh
                    leading = True
                try:
                    next_at = await tick()
                    await publish()
                except Exception:  # a failed step was rolled back; the next tick retries
                    log.exception("scheduler tick failed")
                    next_at = None
                if next_at is not None:
                    wait = (next_at - scheduler.clock.now()).total_seconds()
                    timeout = min(poll, max(0.0, wait))
                if scheduler.planner.dirty:  # come back for the plan when it is due
                    timeout = min(timeout, PLAN_RETRY)
            else:
                leading = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout)
    finally:
        if listener is not None:
            listener.cancel()
        scheduler.shutdown()
        if lock is not None:
            lock.release()


async def _listen(wakeup: asyncio.Event) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    while True:
        await layer.receive(wakeup_channel)
        wakeup.set()


def freeze_startup_heap() -> None:
    """Exempt everything loaded at start-up from the cyclic garbage collector.

    Django, Qiskit and their dependencies leave millions of long-lived objects;
    every full collection walked all of them (about 150 ms on a 2-core machine),
    stalling the event loop and every websocket update behind it. Importing the
    executor first brings Qiskit in before the freeze.
    """
    import gc

    import scheduler.executor  # noqa: F401

    gc.collect()
    gc.freeze()
