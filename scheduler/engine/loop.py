"""The engine's loop: the live scheduler steps the leader, has the started jobs
executed (`scheduler.engine.executions`), reports their end, and publishes the plan.

`Scheduler` is a set of single-step methods a test can call one at a time on a
fake clock (`tick`, `publish_plan`). Its `run()` drives them inside the server's
event loop and alone sets the scheduler's role (leader or standby) and how it is
woken: at the next due instant, when a job's execution is ready, or when
something sends a wake-up (`scheduler.wakeup`). `SchedulerConsumer` runs the
loop in a channel worker (`manage.py runworker scheduler-wake`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any, ClassVar

from asgiref.sync import sync_to_async
from channels.consumer import AsyncConsumer
from channels.layers import get_channel_layer
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone

from scheduler import metrics
from scheduler.clock import Clock, SystemClock, from_ticks, to_ticks
from scheduler.cluster import Heartbeat, forget_gone
from scheduler.console import summary
from scheduler.engine import journal
from scheduler.engine.executions import Execute, Executions
from scheduler.engine.lock import LeaderLock
from scheduler.engine.standby import Standby
from scheduler.engine.step import Leader, StepReport
from scheduler.history.housekeeping import REST_SECONDS, Housekeeping
from scheduler.pg import Listener
from scheduler.plans import Planner
from scheduler.policy import Policy
from scheduler.wakeup import CHANNEL as wakeup_channel
from scheduler.wakeup import NOTIFY_CHANNEL

log = logging.getLogger(__name__)
TIDY_SECONDS = 60.0  # how often the leader deletes rows of processes long gone
PLAN_RETRY = 0.25  # seconds: how soon the loop looks again while a plan is due
TICK_RETRY = 0.1  # seconds: the first retry after a failed tick (doubling, up to the poll)
IDLE_SECONDS = 1.0  # housekeeping runs only when nothing is due for at least this long
IDLE_AGAIN = 0.2  # seconds: the next look while housekeeping has more to do
# A step begins at least this long after the one before: under a stream of submissions
# each step applies those that arrived meanwhile together, rather than one by one (a
# step's statements cost about as much for one input as for ten). After a quiet spell
# the first step is not delayed.
STEP_SPACING = 0.02


class Scheduler:
    """Runs the queue: one `tick()` applies everything due and hands out work."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        execute: Execute | None = None,
        workers: int = 1,
        inline: bool = False,
        leader: Leader | None = None,
        planner: Planner | None = None,
        executors: str | None = None,
        housekeeping: Housekeeping | None = None,
        follow: bool = True,
    ) -> None:
        self.clock = clock or SystemClock()
        # Rollups and retention in idle time (scheduler.history.housekeeping).
        self.housekeeping = housekeeping or Housekeeping.from_settings()
        self.leader = leader or Leader(resumes=True)
        # While another process leads, keep a warm memory to take over with (`run`).
        self.standby = Standby(settings=self.leader.settings, clock=self.clock) if follow else None
        self.planner = planner or Planner()
        self.executions = Executions(
            clock=self.clock,
            execute=execute,
            workers=workers,
            inline=inline,
            executors=executors,
            on_ready=self._ready,
        )
        # The loop's own (`run`): its role, how it is woken, its failed ticks in a row.
        self.leading_since: datetime | None = None
        self._wakeup = asyncio.Event()
        self._wake: Callable[[], object] = lambda: None  # sets `_wakeup`, from any thread
        self._failures = 0
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
        finishes = self.executions.due(now)
        start = time.perf_counter()
        try:
            report = self.leader.step(ticks, reports=[f for _, f in finishes])
        except BaseException:
            self.executions.report_again(finishes)
            raise
        self.executions.reported(finishes)
        seconds = time.perf_counter() - start
        metrics.observe_step(report.instant.events, seconds)
        self.steps_as_leader += 1
        self.last_step = {"at": now.isoformat(), "ms": round(seconds * 1000, 1)}
        if self.steps_as_leader == 1:  # the first decision since it took the lead
            self.first_step_at = timezone.now()
        log_step(report, finishes=len(finishes))
        policy = self.leader.policy
        assert policy is not None
        if report.changed or report.instant.events:
            self.planner.changed(report.instant)  # the plan replays what it may have moved
        self.executions.adopt(policy)
        self.executions.recover()
        if time.monotonic() - self._tidied_at > TIDY_SECONDS:
            self._tidied_at = time.monotonic()
            forget_gone()  # the cluster page's rows of processes long gone
            journal.prune()  # the journal's rows older than a standby would follow
        return self._next_wake(policy)

    def publish_plan(self) -> bool:
        """Publish a new plan if one is due (something changed, the last is a second old)."""
        policy = self.leader.policy
        if policy is None or not self.planner.due():
            return False
        self.planner.publish(policy, to_ticks(self.clock.now()))
        return True

    def housekeep(self) -> bool:
        """One small piece of idle housekeeping (a day's rollup, a batch of pruning);
        whether it did any. A failure is logged, and housekeeping rests a while."""
        try:
            return self.housekeeping.run(self.clock.now())
        except Exception:
            log.exception("housekeeping failed")
            self.housekeeping.rest_until = self.housekeeping.monotonic() + REST_SECONDS
            return False

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
            **self.executions.detail(),
            "loads": self.leader.loads,
            **(
                {"standby": self.standby.detail()}
                if self.standby is not None and not self.leading_since
                else {}
            ),
            "queued": (
                sum(policy.queues(name).queued for name in list(policy.backends))
                if policy
                else None
            ),
        }

    def _next_wake(self, policy: Policy) -> datetime | None:
        due = policy.next_due()
        candidates = [from_ticks(due)] if due is not None else []
        candidates += self.executions.ends()
        return min(candidates) if candidates else None

    def shutdown(self) -> None:
        """Stop at once: running executions are killed and left for the next leader."""
        self.executions.shutdown()
        self.planner.close()

    # ------------------------------------------------------------------- loop
    async def run(
        self,
        *,
        lock: LeaderLock | None = None,
        poll: float = 5.0,
        standby_poll: float = 0.5,
        wakeup: asyncio.Event | None = None,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        """Tick whenever something is due or a wake-up arrives; at least every `poll` s.

        With a `lock`, tick only while this process is the leader; otherwise wait as
        a standby, follow the leader's journal (`Standby`) and try for the lock every
        `standby_poll` seconds (a dead leader's lock is free as soon as its database
        connection drops; on PostgreSQL a thread also waits in the lock's queue and
        wakes the loop the moment it holds it). Wake-ups come from a
        PostgreSQL LISTEN, from the channel layer, or, when a `wakeup` event is given,
        also from whoever sets it (a channel worker's consumer).
        """
        self._wakeup = wakeup or asyncio.Event()
        self._wake = partial(asyncio.get_running_loop().call_soon_threadsafe, self._wakeup.set)
        self._failures = 0
        stop_listening = self._listen(channel=wakeup is None)
        try:
            spacing = Spacing(STEP_SPACING)
            while True:
                self._wakeup.clear()
                if await self._leads(lock):
                    await spacing.wait()
                    timeout = await self._step(poll)
                else:
                    if lock is not None:
                        lock.watch(self._ready)
                    timeout = await self._follow(lock, standby_poll)
                if heartbeat is not None and self.steps_as_leader == 1:
                    heartbeat.beat_soon()  # the cluster page shows a new leader at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), timeout)
        finally:
            stop_listening()
            self.shutdown()
            if lock is not None:
                lock.release()

    async def _leads(self, lock: LeaderLock | None) -> bool:
        """Whether this process leads (without a lock, always); a new leader loads afresh."""
        acquire = lock.acquire if lock else lambda: True
        try:
            leader = await sync_to_async(acquire, thread_sensitive=True)()
        except Exception as error:  # noqa: BLE001 - the database is away: try again
            log.warning("cannot reach the database for the leader lock: %s", error)
            leader = False
        if leader and self.leading_since is None:
            self.leader.policy = None  # whatever was in memory may be old: load afresh,
            if self.standby is not None:  # or take over the standby's, caught up and checked
                self.leader.takeover = self.standby.take_over
            self.steps_as_leader = 0
            self.leading_since = timezone.now()
            log.info("leading the scheduler")
        elif not leader and self.leading_since is not None:
            log.warning("no longer leading the scheduler")
            self.leading_since = None
        return leader

    async def _follow(self, lock: LeaderLock | None, standby_poll: float) -> float:
        """A standby's look at the leader's journal; returns how long to wait."""
        if lock is None or self.standby is None:
            return standby_poll
        try:
            await sync_to_async(self.standby.follow, thread_sensitive=True)()
        except (OperationalError, InterfaceError) as error:
            log.warning("standby cannot read the journal, database unavailable: %s", error)
            await sync_to_async(close_old_connections, thread_sensitive=True)()
        except Exception:  # noqa: BLE001 - a standby that fails to follow loads again
            log.exception("standby failed to follow the leader's journal")
            self.standby.drop("failed to follow")
            await sync_to_async(close_old_connections, thread_sensitive=True)()
        return standby_poll

    async def _step(self, poll: float) -> float:
        """The leader's tick and plan; returns how long to wait for the next one."""
        try:
            next_at = await sync_to_async(self.tick, thread_sensitive=True)()
            await sync_to_async(self.publish_plan, thread_sensitive=True)()
        except (OperationalError, InterfaceError) as error:
            # The database closed a connection or restarts: the step was rolled back;
            # retry soon (a failover must not wait for the next poll).
            self._failures += 1
            log.warning("scheduler tick failed, database unavailable: %s", error)
            await sync_to_async(close_old_connections, thread_sensitive=True)()
            next_at = None
        except Exception:  # a failed step was rolled back; the next tick retries
            self._failures += 1
            log.exception("scheduler tick failed")
            await sync_to_async(close_old_connections, thread_sensitive=True)()
            next_at = None
        else:
            self._failures = 0
        timeout = poll
        if self._failures:
            timeout = min(poll, TICK_RETRY * 2 ** min(self._failures - 1, 5))
        if next_at is not None:
            wait = (next_at - self.clock.now()).total_seconds()
            timeout = min(poll, max(0.0, wait))
        if self.planner.dirty:  # come back for the plan when it is due
            timeout = min(timeout, PLAN_RETRY)
        elif not self._failures and timeout >= IDLE_SECONDS and self.housekeeping.due():
            timeout = await self._idle(timeout)
        return timeout

    async def _idle(self, timeout: float) -> float:
        """Idle time: one piece of housekeeping; the wait left (short if more is to do)."""
        start = time.monotonic()
        more = await sync_to_async(self.housekeep, thread_sensitive=True)()
        left = max(0.0, timeout - (time.monotonic() - start))
        return min(left, IDLE_AGAIN) if more else left

    def _listen(self, *, channel: bool) -> Callable[[], object]:
        """Start hearing wake-ups: PostgreSQL's NOTIFY, or else the channel layer (when
        `channel`); returns how to stop."""
        if connection.vendor == "postgresql":
            name = "qdash-scheduler-listen"
            notify = Listener(NOTIFY_CHANNEL, self._ready, application_name=name)
            notify.start()
            return notify.stop
        if channel:
            return asyncio.ensure_future(_channel_wakeups(self._wakeup)).cancel
        return lambda: None

    def _ready(self) -> None:
        """Something is ready for a tick (an execution's end, a NOTIFY): wake the loop."""
        self._wake()


steps_log = logging.getLogger("scheduler.steps")


class Spacing:
    """Keeps the starts of steps at least `seconds` apart (`STEP_SPACING`)."""

    def __init__(
        self,
        seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.seconds = seconds
        self.clock = clock
        self.sleep = sleep
        self.last: float | None = None

    async def wait(self) -> float:
        """Wait until `seconds` have passed since the last call; returns the wait."""
        gap = 0.0 if self.last is None else self.last + self.seconds - self.clock()
        if gap > 0:
            await self.sleep(gap)
        self.last = self.clock()
        return max(gap, 0.0)


def log_step(report: StepReport, *, finishes: int) -> None:
    """One logfmt line per step, with its phases (as Kueue logs its scheduling cycles), at
    debug level; the console gets one summary line a minute (`scheduler.console`)."""
    events = report.instant.events
    started = sum(1 for e in events if e.kind == "job_started")
    ended = sum(1 for e in events if e.kind == "job_ended")
    timers = sum(1 for e in events if e.kind == "timer_fired")
    phases = " ".join(f"{name}_ms={seconds * 1000:.1f}" for name, seconds in report.phases.items())
    summary.add(
        inputs=report.inputs, started=started, ended=ended, timers=timers, refused=report.refused
    )
    if not steps_log.isEnabledFor(logging.DEBUG):
        return
    steps_log.debug(
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


async def _channel_wakeups(wakeup: asyncio.Event) -> None:
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


class SchedulerConsumer(AsyncConsumer):
    """The scheduler as a channel worker: `manage.py runworker scheduler-wake`.

    The first wake-up starts the scheduler loop in the worker (leader or
    standby, see `scheduler.engine.lock`); every later one makes it tick at once.
    Between wake-ups the loop still ticks at every due timer.
    """

    loop: ClassVar[asyncio.Task[None] | None] = None
    wakeup: ClassVar[asyncio.Event | None] = None

    async def scheduler_wake(self, message: dict[str, Any]) -> None:
        cls = type(self)
        if cls.loop is None or cls.loop.done():
            cls.wakeup = asyncio.Event()
            cls.loop = asyncio.ensure_future(Scheduler().run(lock=LeaderLock(), wakeup=cls.wakeup))
        assert cls.wakeup is not None
        cls.wakeup.set()
