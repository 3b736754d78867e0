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

import json
import logging
import os
import signal
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.db import connections, transaction
from django.utils import timezone

from scheduler import models
from scheduler.clock import from_ticks
from scheduler.policy import Plan, PlanEntry, Policy, make_plan
from scheduler.policy.plan import BackendState

log = logging.getLogger(__name__)
PLAN_INTERVAL = timedelta(seconds=1)  # a new plan at most this often
PAGE_ENTRIES = 256  # entries per page aimed at; the page count doubles as the queue grows
FORK_AT = 5_000  # queued jobs from which the plan is made in a forked process
CHILD_TIMEOUT = 300.0  # seconds a forked plan may take before it is killed
STALE_AFTER = timedelta(seconds=5)  # pages say how old a plan older than this is

# Hooks called in the leader's process once a new plan is published (live updates).
after_publish: list[Callable[[], None]] = []


def _published() -> None:
    for hook in after_publish:
        hook()


def page_of(uid: str, pages: int) -> int:
    return zlib.crc32(uid.encode()) % pages


def page_count(entries: int) -> int:
    pages = 1
    while pages * PAGE_ENTRIES < entries:
        pages *= 2
    return pages


class Publisher:
    """Writes plans, rewriting only the pages whose entries changed since the last one."""

    def __init__(self) -> None:
        self.written: dict[int, str] = {}
        self.pages = 0

    def publish(self, plan: Plan, *, made_at: datetime | None = None) -> int:
        """Store `plan` as the current one; returns how many pages were written."""
        pages = page_count(len(plan.entries))
        texts: list[dict[str, list[object]]] = [{} for _ in range(pages)]
        for uid, e in plan.entries.items():
            texts[page_of(uid, pages)][uid] = [e.backend, e.lane, e.position, e.start, e.ahead]
        encoded = {n: json.dumps(page, separators=(",", ":")) for n, page in enumerate(texts)}
        if pages != self.pages:
            self.written = {}
        changed = [
            models.PlanPage(number=n, entries=text)
            for n, text in encoded.items()
            if self.written.get(n) != text
        ]
        with transaction.atomic():
            models.PlanPage.objects.bulk_create(
                changed, update_conflicts=True, unique_fields=["number"], update_fields=["entries"]
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
        self.written, self.pages = encoded, pages
        return len(changed)


class Planner:
    """The leader's side: decides when a plan is due, and makes it here or in a fork."""

    def __init__(self, *, fork_at: int = FORK_AT) -> None:
        self.publisher = Publisher()
        self.fork_at = fork_at
        self.dirty = True
        self.last_start = 0.0
        self.last_cost = 0.0  # seconds the last plan took (a forked one: until it was reaped)
        self.child: int | None = None
        self.child_started = 0.0

    def changed(self) -> None:
        self.dirty = True

    def due(self) -> bool:
        """Something changed, no plan is being made, and the last began at least a second
        ago and at least as long ago as it took (plans use at most half of a core)."""
        self._reap()
        wait = max(PLAN_INTERVAL.total_seconds(), 2 * self.last_cost)
        return self.dirty and self.child is None and time.monotonic() - self.last_start >= wait

    def publish(self, policy: Policy, now: int) -> None:
        """Make and publish the plan of `policy` at `now` (forked for long queues)."""
        self.dirty = False
        self.last_start = time.monotonic()
        queued = sum(policy.queues(name).queued for name in policy.backends)
        if queued >= self.fork_at and hasattr(os, "fork"):
            self._fork(policy, now)
        else:
            self.publisher.publish(make_plan(policy, now))
            self.last_cost = time.monotonic() - self.last_start
            _published()

    def _fork(self, policy: Policy, now: int) -> None:
        pid = os.fork()
        if pid:
            self.child, self.child_started = pid, time.monotonic()
            self.publisher.written = {}  # the child writes pages this process never saw
            return
        status = 1
        try:
            _forget_connections()
            Publisher().publish(make_plan(policy, now, in_place=True))
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
        self.last_cost = time.monotonic() - self.last_start
        if status != 0:
            log.warning("the plan process ended with status %s", status)
            self.dirty = True
        else:
            _published()

    def close(self) -> None:
        if self.child is not None:
            os.kill(self.child, signal.SIGKILL)
            os.waitpid(self.child, 0)
            self.child = None


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
