"""The published plan: made by the leader, read by any web process.

The leader replays the rules from its state (`policy.make_plan`) after changes,
at most about once a second (`PLAN_INTERVAL`), and publishes the result in two
tables: `PublishedPlan` (one row: when, how many pages, each backend's
situation and head) and `PlanPage` (each queued job's entry, hashed by job id
into pages of about `PAGE_ENTRIES` entries). Reading one job's entry reads two
small rows, however long the queue.

With a long queue the replay runs in a forked child process: it works on a
copy-on-write image of the leader's memory, so the leader goes on stepping
while the plan is made (the way Redis saves a snapshot).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import signal
import tempfile
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from scheduler import live, models
from scheduler.clock import from_ticks
from scheduler.policy import Plan, PlanEntry, Policy
from scheduler.policy import model as m
from scheduler.policy.incremental import COUPLED_PLANS, Changes, PlanCache, Update
from scheduler.policy.plan import BackendState

log = logging.getLogger(__name__)
PLAN_INTERVAL = timedelta(seconds=0.25)  # a new plan at most this often
FULL_INTERVAL = timedelta(seconds=1)  # the same, without incremental plans
PAGE_ENTRIES = 256  # entries per page aimed at; the page count doubles as the queue grows
FORK_AT = 5_000  # queued jobs from which the plan is made in a forked process
CHILD_TIMEOUT = 300.0  # seconds a forked plan may take before it is killed
SUMMARY_SECONDS = 60.0  # how often the leader logs how its plans went
STALE_AFTER = timedelta(seconds=5)  # pages say how old a plan older than this is


def page_of(uid: str, pages: int) -> int:
    return zlib.crc32(uid.encode()) % pages


def page_count(entries: int) -> int:
    pages = 1
    while pages * PAGE_ENTRIES < entries:
        pages *= 2
    return pages


class Publisher:
    """Writes plans, rewriting only the pages whose entries changed since the last one.

    It keeps what each page holds, so a plan given with the entries that changed
    (`changed`) touches only their pages; without them, it compares every page.
    """

    def __init__(self) -> None:
        self.content: list[dict[str, list[object]]] | None = None  # None: not known
        self.pages = 0

    def publish(
        self,
        plan: Plan,
        *,
        made_at: datetime | None = None,
        changed: Mapping[str, PlanEntry | None] | None = None,
    ) -> int:
        """Store `plan` as the current one; returns how many pages were written.

        `changed`: the entries that changed since the plan this publisher last
        published or absorbed (None: the job has none any more); without it, all."""
        written = self._update(len(plan.entries), lambda: plan.entries, changed)
        assert self.content is not None
        pages = self.pages
        rows = [
            models.PlanPage(number=n, entries=json.dumps(self.content[n], separators=(",", ":")))
            for n in sorted(written)
        ]
        with transaction.atomic():
            models.PlanPage.objects.bulk_create(
                rows, update_conflicts=True, unique_fields=["number"], update_fields=["entries"]
            )
            models.PlanPage.objects.filter(number__gte=pages).delete()
            models.PublishedPlan.objects.update_or_create(
                pk=1,
                defaults={
                    "at": from_ticks(plan.at),
                    "made_at": made_at or timezone.now(),
                    "pages": pages,
                    "backends": {name: asdict(state) for name, state in plan.backends.items()},
                },
            )
        return len(rows)

    def absorb(
        self,
        count: int,
        entries: Callable[[], Mapping[str, PlanEntry]],
        changed: Mapping[str, PlanEntry | None],
    ) -> None:
        """Another process published a plan of `count` entries (`entries()`), `changed`
        since the one this publisher knows."""
        self._update(count, entries, changed)

    def reset(self) -> None:
        """Forget what the pages hold: the next plan compares every page."""
        self.content, self.pages = None, 0

    def _update(
        self,
        count: int,
        entries: Callable[[], Mapping[str, PlanEntry]],
        changed: Mapping[str, PlanEntry | None] | None,
    ) -> set[int]:
        """Bring `content` to the plan of `entries`; returns the pages that changed."""
        pages = page_count(count)
        if changed is not None and self.content is not None and pages == self.pages:
            content = self.content
            touched = set()
            for uid, entry in changed.items():
                page = page_of(uid, pages)
                touched.add(page)
                if entry is None:
                    content[page].pop(uid, None)
                else:
                    content[page][uid] = _row(entry)
            return touched
        fresh: list[dict[str, list[object]]] = [{} for _ in range(pages)]
        for uid, entry in entries().items():
            fresh[page_of(uid, pages)][uid] = _row(entry)
        old = self.content if self.content is not None and pages == self.pages else None
        self.content, self.pages = fresh, pages
        return {n for n in range(pages) if old is None or old[n] != fresh[n]}


def _row(entry: PlanEntry) -> list[object]:
    return [
        entry.backend,
        entry.lane,
        entry.position,
        entry.start,
        entry.ahead,
        None if entry.allocation is None else dict(entry.allocation),
    ]


class Planner:
    """The leader's side: decides when a plan is due, and makes it here or in a fork.

    A plan replays only the backends a change may have moved (`PlanCache`, see
    scheduler/policy/incremental.py); the replay runs in a forked process when
    those backends hold `fork_at` queued jobs or more, and the fork sends back
    what it found so the next plan builds on it.
    """

    def __init__(
        self,
        *,
        fork_at: int = FORK_AT,
        on_publish: Callable[..., None] = live.plan_published,
    ) -> None:
        self.publisher = Publisher()
        self.cache = PlanCache()
        self.changes = Changes()  # since the last plan was begun
        # Told in the leader's process once a new plan is out (with `held`: the backends
        # whose count of jobs held back by allocations changed): by default the dashboards.
        self.on_publish = on_publish
        self.held: dict[str, int] = {}  # each backend's count in the last plan published
        self.fork_at = fork_at
        self.dirty = True
        self.last_start = 0.0
        self.last_cost = 0.0  # seconds the last plan took (a forked one: until it was reaped)
        self.last: dict[str, Any] = {}  # what the last plan replayed (the cluster page)
        self.plans = self.full = self.retried = 0  # plans made, full replays, partial redone
        self._logged = time.monotonic()
        self.incremental = settings.QDASH_PLAN_INCREMENTAL
        self.interval = (PLAN_INTERVAL if self.incremental else FULL_INTERVAL).total_seconds()
        self.child: int | None = None
        self.child_started = 0.0
        self._child_policy: Policy | None = None
        self._child_result = ""

    def changed(self, instant: m.Instant | None = None) -> None:
        """Something changed: what a step did (`instant`), or anything (None)."""
        self.dirty = True
        if instant is None:
            self.changes.everything = True
        else:
            self.changes.note(instant)

    def due(self) -> bool:
        """Something changed, no plan is being made, and the last began at least
        `PLAN_INTERVAL` ago (`FULL_INTERVAL` without incremental plans) and at least
        twice as long ago as it took (plans use at most half of a core)."""
        self._reap()
        wait = max(self.interval, 2 * self.last_cost)
        return self.dirty and self.child is None and time.monotonic() - self.last_start >= wait

    def publish(self, policy: Policy, now: int) -> None:
        """Make and publish the plan of `policy` at `now` (forked for long replays)."""
        self.dirty = False
        self.last_start = time.monotonic()
        changes, self.changes = self.changes, Changes(everything=not self.incremental)
        start = max(now, policy.now) if policy.now is not None else now
        names = self.cache.dirty(policy, start, changes)
        replayed = sum(
            policy.queues(name).queued for name in (policy.backends if names is None else names)
        )
        if replayed >= self.fork_at and hasattr(os, "fork"):
            self._fork(policy, now, changes)
            return
        update = self.cache.compute(policy, now, changes, incremental=self.incremental)
        assert update is not None  # not in place: a full replay follows by itself
        changed = self.cache.apply(update, policy)
        plan = self.cache.plan(update)
        self.publisher.publish(plan, changed=changed)
        self.last_cost = time.monotonic() - self.last_start
        self._note(update)
        self.on_publish(held=self._held(plan.backends))

    def _note(self, update: Update | None) -> None:
        self.plans += 1
        if update is None:
            self.retried += 1
        elif update.full:
            self.full += 1
        if time.monotonic() - self._logged >= SUMMARY_SECONDS:
            self._logged = time.monotonic()
            log.info(
                "plans so far: %d (%d full replays, %d partial ones redone in full); "
                "the last took %.2f s",
                self.plans,
                self.full,
                self.retried,
                self.last_cost,
            )
        self.last = {
            "replayed": None if update is None else sorted(update.backends),
            "plans": self.plans,
            "full": self.full,
            "retried": self.retried,
        }

    def _fork(self, policy: Policy, now: int, changes: Changes) -> None:
        handle, self._child_result = tempfile.mkstemp(prefix="qdash-plan-")
        os.close(handle)
        pid = os.fork()
        if pid:
            self.child, self.child_started = pid, time.monotonic()
            self._child_policy = policy
            return
        status = 1
        try:
            _forget_connections()
            update = self.cache.compute(
                policy, now, changes, in_place=True, incremental=self.incremental
            )
            if update is not None:  # else the parent asks for a full replay
                changed = self.cache.apply(update)
                self.publisher.publish(self.cache.plan(update), changed=changed)
            with open(self._child_result, "wb") as out:
                pickle.dump(update, out, pickle.HIGHEST_PROTOCOL)
            status = 0
        except BaseException:  # noqa: BLE001 - the child reports and leaves, whatever happened
            log.exception("making the plan failed")
        finally:
            os._exit(status)

    def _reap(self) -> None:
        if self.child is None:
            return
        pid, status = os.waitpid(self.child, os.WNOHANG)
        if pid == 0:
            if time.monotonic() - self.child_started > CHILD_TIMEOUT:
                os.kill(self.child, signal.SIGKILL)
            return
        self.child = None
        policy, self._child_policy = self._child_policy, None
        try:
            update = self._child_update() if status == 0 else None
        finally:
            os.unlink(self._child_result)
        self.last_cost = time.monotonic() - self.last_start
        if status != 0:
            log.warning("the plan process ended with status %s", status)
            self.cache.forget()
            self.publisher.reset()  # the child may have written pages this one never saw
        elif update is None:  # its replay moved other backends' plans: a full one now
            self._note(None)
            self.cache.coupled = COUPLED_PLANS
            self.last_start = 0.0
        if status != 0 or update is None:
            self.changes.everything = True
            self.dirty = True
            return
        assert policy is not None
        changed = self.cache.apply(update, policy)
        self.publisher.absorb(self.cache.size(), self.cache.entries, changed)
        self._note(update)
        view = current()
        self.on_publish(held=self._held(view.backends if view is not None else {}))

    def _child_update(self) -> Update | None:
        with open(self._child_result, "rb") as result:
            update: Update | None = pickle.load(result)  # noqa: S301 - our own child wrote it
        return update

    def _held(self, backends: Mapping[str, BackendState]) -> list[str]:
        """The backends whose count of jobs held back by allocations changed."""
        counts = {name: state.allocation_blocked for name, state in backends.items()}
        changed = [
            name
            for name in counts.keys() | self.held.keys()
            if counts.get(name, 0) != self.held.get(name, 0)
        ]
        self.held = counts
        return sorted(changed)

    def close(self) -> None:
        if self.child is not None:
            os.kill(self.child, signal.SIGKILL)
            os.waitpid(self.child, 0)
            self.child = None
            with contextlib.suppress(OSError):
                os.unlink(self._child_result)


_kept: list[object] = []


def _forget_connections() -> None:
    """In a forked child: stop using the parent's database connections, without closing
    them (closing would end the parent's sessions); new ones open on first use."""
    for conn in connections.all(initialized_only=True):
        _kept.append(conn.connection)
        conn.connection = None
        conn.in_atomic_block = False
        conn.savepoint_ids = []
        conn.needs_rollback = False
        pools = getattr(type(conn), "_connection_pools", None)
        if pools:  # PostgreSQL's pool: its threads stayed in the parent; a new one here
            _kept.append(dict(pools))
            pools.clear()


# ---------------------------------------------------------------- reading
@dataclass(frozen=True)
class PlanView:
    """The current plan's header: when it was made and each backend's state."""

    at: datetime
    made_at: datetime
    pages: int
    backends: dict[str, BackendState]

    def age(self, now: datetime | None = None) -> timedelta:
        """How old the state the plan starts from is."""
        return (now or timezone.now()) - self.at

    def stale(self, now: datetime | None = None) -> bool:
        return self.age(now) > STALE_AFTER


def current() -> PlanView | None:
    """The published plan's header (one row), or None before the first plan."""
    row = models.PublishedPlan.objects.filter(pk=1).first()
    if row is None:
        return None
    return PlanView(
        at=row.at,
        made_at=row.made_at,
        pages=row.pages,
        backends={name: BackendState(**state) for name, state in row.backends.items()},
    )


def entry(view: PlanView, uid: str) -> PlanEntry | None:
    """One queued job's entry in the plan (one page read), or None if it has none."""
    text = (
        models.PlanPage.objects.filter(number=page_of(uid, view.pages))
        .values_list("entries", flat=True)
        .first()
    )
    found = json.loads(text).get(uid) if text else None
    if found is None:
        return None
    return PlanEntry(*found)
