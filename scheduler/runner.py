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
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone

from scheduler import bulk, metrics, models
from scheduler.clock import Clock, SystemClock, from_ticks, ticks_span, to_ticks
from scheduler.cluster import Heartbeat, forget_gone
from scheduler.engine import Leader, StepReport
from scheduler.leader import LeaderLock
from scheduler.pg import Listener
from scheduler.plans import Planner
from scheduler.policy import Policy
from scheduler.policy import model as m
from scheduler.wakeup import CHANNEL as wakeup_channel
from scheduler.wakeup import NOTIFY_CHANNEL

log = logging.getLogger(__name__)
TIDY_SECONDS = 60.0  # how often the leader deletes rows of processes long gone
PLAN_RETRY = 0.25  # seconds: how soon the loop looks again while a plan is due
TICK_RETRY = 0.1  # seconds: the first retry after a failed tick (doubling, up to the poll)
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
        executors: str | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.leader = leader or Leader()
        self.planner = planner or Planner()
        self.execute = execute
        self.inline = inline  # execute in the ticking thread (tests)
        self.on_ready: Callable[[], None] = lambda: None
        # "workers": executor processes run the circuits (scheduler.dispatch); "inline":
        # this process does, in threads.
        self.queue = None
        if (executors or settings.QDASH_EXECUTORS) == "workers":
            from scheduler.dispatch import QueueDispatch

            self.queue = QueueDispatch()
        threads = inline or self.queue is not None
        self._pool = None if threads else ThreadPoolExecutor(workers, "qdash-executor")
        self._executing: dict[str, Future[Finish] | None] = {}
        self._finishes: dict[str, Finish] = {}
        self._guard = threading.Lock()
        self.leading_since: datetime | None = None  # set by scheduler_loop
        self.steps_as_leader = 0
        self.first_step_at: datetime | None = None
        self._tidied_at = time.monotonic()
        self.last_step: dict[str, Any] = {}  # what the last step did (the cluster page)

    def tick(self) -> datetime | None:
        """Report finished jobs, apply what is due now, start executing new jobs.

        Returns when the next tick is due (None: only a wake-up can bring work).
        """
        now = self.clock.now()
        ticks = to_ticks(now)
        if self.queue is not None:
            self._collect_results(now)
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
        seconds = time.perf_counter() - start
        metrics.observe_step(report.instant.events, seconds)
        self.steps_as_leader += 1
        self.last_step = {"at": now.isoformat(), "ms": round(seconds * 1000, 1)}
        if self.steps_as_leader == 1:  # the first decision since it took the lead
            self.first_step_at = timezone.now()
        log_step(report, finishes=len(finishes))
        policy = self.leader.policy
        assert policy is not None
        if report.changed:
            self.planner.changed()
        self._adopt(policy)
        if self.queue is not None and self.queue.recover(time.monotonic()):
            self._collect_results(self.clock.now())  # jobs failed as lost end at the next tick
        if time.monotonic() - self._tidied_at > TIDY_SECONDS:
            self._tidied_at = time.monotonic()
            forget_gone()  # the cluster page's rows of processes long gone
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
        self.steps_as_leader = 0

    def detail(self) -> dict[str, Any]:
        """What the cluster page shows of this scheduler."""
        policy = self.leader.policy
        return {
            "role": "leader" if self.leading_since else "standby",
            "last_step": self.last_step if self.leading_since else {},
            "first_step_at": (
                self.first_step_at.isoformat()
                if self.leading_since and self.first_step_at
                else None
            ),
            "steps": self.steps_as_leader,
            "executors": "workers" if self.queue is not None else "inline",
            "running": len(self.queue.jobs if self.queue is not None else self._executing),
            # jobs whose circuits run in this process's threads (no executor workers)
            "executing": sorted(self._executing) if self.queue is None else [],
            "loads": self.leader.loads,
            "queued": (
                sum(policy.queues(name).queued for name in list(policy.backends))
                if policy
                else None
            ),
        }

    def _due_finishes(self, now: datetime) -> list[tuple[tuple[str, Finish], m.FinishJob]]:
        with self._guard:
            due = [uid for uid, finish in self._finishes.items() if finish.at <= now]
            finishes = [(uid, self._finishes.pop(uid)) for uid in due]
        return [((uid, f), m.FinishJob(uid, f.status, f.error)) for uid, f in finishes]

    def _adopt(self, policy: Policy) -> None:
        """Execute every running job nobody executes yet (new, or left by a restart)."""
        running = {b.running.id: b.running for b in policy.backends.values() if b.running}
        if self.queue is not None:
            self.queue.forget(set(running))
        for uid in list(self._executing):
            if uid not in running:  # cancelled, failed at its limit, session gone
                self._executing.pop(uid)
                with self._guard:
                    self._finishes.pop(uid, None)
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
        rows = models.Job.objects.filter(uid__in=[uid for uid, _ in new]).only(
            "uid", "program_id", "params", "result", "error_message"
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
                future = self._pool.submit(self._run, row, end)
                self._executing[uid] = future
                future.add_done_callback(partial(self._collect, uid))
        for column, values in kept.items():
            bulk.update(models.Job, [column], values, where={"status": m.RUNNING})
        if self.queue is not None:
            self.queue.hand_out(hand_out)

    def _collect_results(self, now: datetime) -> None:
        """The handed-out jobs an executor has written a result or an error for."""
        assert self.queue is not None
        for uid, end, code, _ in self.queue.results():
            if code is None:
                self._finished(uid, Finish(max(end, now), m.COMPLETED))
            else:
                self._finished(uid, Finish(now, m.FAILED, code))

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
    standby_poll: float = 0.5,
    wakeup: asyncio.Event | None = None,
    heartbeat: Heartbeat | None = None,
) -> None:
    """Tick whenever something is due or a wake-up arrives; at least every `poll` s.

    With a `lock`, tick only while this process is the leader; otherwise wait as
    a standby and try for the lock every `standby_poll` seconds (a dead leader's
    lock is free as soon as its database connection drops). Wake-ups come from a
    PostgreSQL LISTEN, from the channel layer, or, when a `wakeup` event is given,
    also from whoever sets it (a channel worker's consumer).
    """
    loop = asyncio.get_running_loop()
    listen_channel = wakeup is None
    wakeup = wakeup or asyncio.Event()

    def ready() -> None:
        loop.call_soon_threadsafe(wakeup.set)

    scheduler.on_ready = ready
    listeners: list[asyncio.Future[None]] = []
    notify = None
    if connection.vendor == "postgresql":
        notify = Listener(NOTIFY_CHANNEL, ready, application_name="qdash-scheduler-listen")
        notify.start()
    elif listen_channel:
        listeners.append(asyncio.ensure_future(_listen(wakeup)))
    tick = sync_to_async(scheduler.tick, thread_sensitive=True)
    publish = sync_to_async(scheduler.publish_plan, thread_sensitive=True)
    is_leader = sync_to_async(lock.acquire if lock else lambda: True, thread_sensitive=True)
    cleanup = sync_to_async(close_old_connections, thread_sensitive=True)
    failures = 0  # ticks failed in a row
    try:
        while True:
            wakeup.clear()
            timeout = standby_poll
            try:
                leader = await is_leader()
            except Exception as error:  # noqa: BLE001 - the database is away: try again
                log.warning("cannot reach the database for the leader lock: %s", error)
                leader = False
            if leader:
                if scheduler.leading_since is None:
                    scheduler.lost_lead()  # whatever was in memory may be old: load afresh
                    scheduler.leading_since = timezone.now()
                    log.info("leading the scheduler")
                timeout = poll
                try:
                    next_at = await tick()
                    await publish()
                except (OperationalError, InterfaceError) as error:
                    # The database closed a connection or restarts: the step was rolled
                    # back; retry soon (a failover must not wait for the next poll).
                    failures += 1
                    log.warning("scheduler tick failed, database unavailable: %s", error)
                    await cleanup()  # a connection that broke is replaced, not reused
                    next_at = None
                except Exception:  # a failed step was rolled back; the next tick retries
                    failures += 1
                    log.exception("scheduler tick failed")
                    await cleanup()
                    next_at = None
                else:
                    failures = 0
                if failures:
                    timeout = min(poll, TICK_RETRY * 2 ** min(failures - 1, 5))
                if next_at is not None:
                    wait = (next_at - scheduler.clock.now()).total_seconds()
                    timeout = min(poll, max(0.0, wait))
                if scheduler.planner.dirty:  # come back for the plan when it is due
                    timeout = min(timeout, PLAN_RETRY)
            elif scheduler.leading_since is not None:
                log.warning("no longer leading the scheduler")
                scheduler.leading_since = None
            if heartbeat is not None and scheduler.steps_as_leader == 1:
                heartbeat.beat_soon()  # the cluster page shows a new leader at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout)
    finally:
        for listener in listeners:
            listener.cancel()
        if notify is not None:
            notify.stop()
        scheduler.shutdown()
        if lock is not None:
            lock.release()


async def _listen(wakeup: asyncio.Event) -> None:
    """Wake-ups on the channel layer (without PostgreSQL), surviving a layer restart."""
    layer = get_channel_layer()
    if layer is None:
        return
    while True:
        try:
            await layer.receive(wakeup_channel)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the layer is away: look again soon
            log.warning("scheduler wake-ups: %s", error)
            await asyncio.sleep(1.0)
        wakeup.set()


def freeze_startup_heap(*modules: str) -> None:
    """Exempt everything loaded at start-up from the cyclic garbage collector.

    Django, Qiskit and their dependencies leave millions of long-lived objects;
    every full collection walked all of them (about 150 ms on a 2-core machine),
    stalling the event loop and every websocket update behind it. Where this
    process runs circuits, importing the executor first brings Qiskit in before
    the freeze; a scheduler that hands them to executor workers never loads it.
    """
    import gc
    import importlib

    if settings.QDASH_EXECUTORS != "workers":
        modules += ("scheduler.executor",)
    for module in modules:  # what this process will need, loaded before the freeze
        importlib.import_module(module)

    gc.collect()
    gc.freeze()
