"""A standby scheduler's warm memory: loaded once, then kept equal to the leader's.

A scheduler process that does not hold the leader lock (`scheduler.engine.lock`)
loads the state once, as a new leader would, in one snapshot of the database,
then applies the leader's journal (`scheduler.engine.journal`) row by row as
the leader commits it: the same calls on the same policy, so the same state,
at the cost of the steps. Any row it cannot follow sends it back to a full
load: a missing row (pruned, or a number skipped), a row that began with a full
load (a new leader, a conflict), a digest that differs from its own.

Every AUDIT_SECONDS the standby also checks its memory against the rows, in
one snapshot of the database together with the journal rows it saw: the queued
and running jobs (how many and the sum of their keys, status by status) and the
open sessions. That check reads the whole queue, so it runs while the standby
waits, never on the way to leading (a failover that comes during one waits for
its end).

When it wins the lock, the new leader's first step (`Leader.takeover`) asks
`take_over`: inside that step's transaction, holding the step lock, it applies
the tail the old leader committed since the last look, checks what a takeover
acts on first against the rows (the running job of every backend, the open
sessions; the whole queue too if the last audit is old), and hands its memory
over. On any gap or difference the leader loads in full: the database stays the
truth (and a row that changed under it later still fails its conditional write).
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Sum
from django.utils import timezone

from scheduler import models
from scheduler.clock import Clock, SystemClock, to_ticks
from scheduler.engine import journal
from scheduler.engine.load import refresh
from scheduler.engine.step import Leader
from scheduler.policy import model as m

log = logging.getLogger(__name__)
BATCH = 500  # journal rows read at once
AUDIT_SECONDS = 30.0  # how often a warm standby checks its whole memory against the rows
OPEN = (m.OPEN, m.ACTIVE, m.INACTIVE)  # sessions' states before closed
Kind = models.Input.Kind


class Behind(Exception):
    """The standby cannot follow the journal from where it is: it loads again."""


class Standby:
    """A policy kept equal to the leader's by following its journal."""

    def __init__(self, *, settings: m.Settings | None = None, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.memory = Leader(settings=settings, resumes=True, on_commit=lambda events: None)
        self.loads = 0  # full loads: the first, then one per gap or difference
        self.applied = 0  # journal rows applied
        self.takeovers = 0  # times it handed its memory to a new leader
        self.reason = ""  # why it last loaded
        self.loaded_at = -1  # the journal's newest row when it last loaded
        self.lag_s: float | None = None  # how long the oldest row not applied had waited
        self.behind_steps = 0  # rows the leader had committed that it had not applied
        self.behind_inputs = 0  # the inputs those rows applied
        self.looked_at: datetime | None = None  # when it last looked at the journal
        self.audit_every = AUDIT_SECONDS
        self.audited: float | None = None  # monotonic time of the last check of the queue
        self.audits = 0

    @property
    def warm(self) -> bool:
        return self.memory.policy is not None

    # ----------------------------------------------------------------- follow
    def follow(self) -> int:
        """Load if cold, then apply what the leader committed since; returns the rows
        applied. Outside any step: reads only."""
        if not self.warm:
            self._load(self.reason or "first load")
        self._measure_lag()
        try:
            applied = self._catch_up()
            if self.audited is None or time.monotonic() - self.audited >= self.audit_every:
                self._audit()
            return applied
        except Behind as why:
            log.info("standby reloads: %s", why)
            self.drop(str(why))
            return 0

    def drop(self, reason: str) -> None:
        """Forget the memory: the next look loads in full."""
        self.memory.policy = None
        self.reason = reason

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One snapshot of the database for every read inside (PostgreSQL: a read-only
        REPEATABLE READ transaction, which never waits for the leader)."""
        snapshot = connection.vendor == "postgresql" and not connection.in_atomic_block
        with transaction.atomic():
            if snapshot:
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield

    def _load(self, reason: str) -> None:
        """A full load, in one snapshot of the database."""
        with self._snapshot():
            self.memory.policy = None
            self.memory.load(to_ticks(self.clock.now()))
        # The loaded queue lives as long as this memory: out of the cyclic collector's
        # full passes, which would otherwise walk it, seconds after a large load, at
        # whatever moment the lock comes (as `heap.freeze_startup_heap` does at start-up).
        gc.collect()
        gc.freeze()
        self.memory.record = journal.Record()
        self.loaded_at = self.memory.seq
        self.audited = time.monotonic()  # loaded from the rows: it agrees with them
        self.loads += 1
        self.reason = reason
        log.info("standby loaded (%s), journal at step %d", reason, self.memory.seq)

    def _measure_lag(self) -> None:
        after = models.StepRecord.objects.filter(seq__gt=self.memory.seq)
        ahead = after.aggregate(n=Count("id"), inputs=Sum("inputs"), oldest=Min("at"))
        now = timezone.now()
        self.looked_at = now
        self.behind_steps = ahead["n"] or 0
        self.behind_inputs = ahead["inputs"] or 0
        oldest = ahead["oldest"]
        self.lag_s = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())

    def _catch_up(self) -> int:
        applied = 0
        while True:
            rows = list(
                models.StepRecord.objects.filter(seq__gt=self.memory.seq).order_by("seq")[:BATCH]
            )
            for row in rows:
                self._apply(row)
                applied += 1
            if len(rows) < BATCH:
                return applied

    def _apply(self, row: models.StepRecord) -> None:
        memory = self.memory
        policy = memory.policy
        assert policy is not None
        if row.seq != memory.seq + 1:
            raise Behind(f"journal step {memory.seq + 1} is missing (next is {row.seq})")
        if row.loaded and memory.seq != self.loaded_at:
            # A leader that loaded afresh from the rows this memory was loaded from (and
            # nothing applied since) began where it begins: its calls apply alike.
            raise Behind(f"the leader loaded afresh at step {row.seq}")
        try:
            merged, restored = journal.apply(policy, journal.ops_of(row))
        except Exception as error:  # noqa: BLE001 - whatever it was, the memory is unsure
            raise Behind(f"step {row.seq} did not apply: {error!r}") from error
        _note_rows(memory, merged, restored, row.keys)
        mine = json.loads(json.dumps(journal.digest(policy)))
        if mine != row.digest:
            raise Behind(f"step {row.seq}: the state differs from the leader's")
        memory._note_decisions(merged)
        memory._forget(merged)
        policy.forget_charges()
        memory.seq = row.seq
        self.applied += 1

    # -------------------------------------------------------------- take over
    def take_over(self, leader: Leader, now: int) -> bool:
        """Fill `leader` (in its first step's transaction, holding the step lock) with
        this memory, caught up and checked; False: the leader loads in full."""
        if not self.warm:
            log.info("standby not warm (%s): loading in full", self.reason or "never loaded")
            return False
        start = time.perf_counter()
        try:
            self._catch_up()
            self._check_live()
            if self.audited is None or time.monotonic() - self.audited > 3 * self.audit_every:
                self._check_queue()  # not audited lately: the whole queue, now
        except Behind as why:
            log.warning("standby memory not taken over: %s", why)
            self.drop(str(why))
            return False
        memory = self.memory
        policy = memory.policy
        assert policy is not None
        refresh(memory.written)
        last = models.Event.objects.aggregate(last=Max("at"))["last"]
        decided = [d for d in (memory.decided, None if last is None else to_ticks(last)) if d]
        leader.decided = max(decided) if decided else None
        if leader.decided is not None and (policy.now is None or policy.now < leader.decided):
            policy.now = leader.decided
        leader.policy, leader.written, leader.seq = policy, memory.written, memory.seq
        memory.policy = None  # the leader owns it now; a standby again loads afresh
        self.reason = "took over"
        self.takeovers += 1
        log.info("took over a warm standby's memory in %.3f s", time.perf_counter() - start)
        return True

    def _audit(self) -> None:
        """The whole memory against the rows, in one snapshot with the journal."""
        with self._snapshot():
            self._catch_up()  # to the journal's newest row in this snapshot
            self._check_queue()
        self.audited = time.monotonic()
        self.audits += 1

    def _check_live(self) -> None:
        """What a new leader acts on first agrees with the rows: the running job of
        every backend, the open sessions (how many and the sum of their keys, by state)."""
        memory = self.memory
        policy = memory.policy
        assert policy is not None
        if len(memory.written.jobs) != len(policy.jobs):
            raise Behind("the jobs in memory and their keys differ")
        running = dict(
            models.Job.objects.filter(status=m.RUNNING).values_list("uid", "backend__name")
        )
        mine = {b.running.id: name for name, b in policy.backends.items() if b.running}
        if running != mine:
            raise Behind(f"running jobs differ from the database: {running} in it")
        self._check_sessions()

    def _check_sessions(self) -> None:
        pending = models.Input.objects.filter(kind__in=[Kind.SUBMIT, Kind.CREATE_SESSION])
        open_rows = (
            models.Session.objects.filter(state__in=OPEN)
            .exclude(Exists(pending.filter(session=OuterRef("pk"))))
            .values_list("state")
            .annotate(n=Count("id"), keys=Sum("id"))
            .order_by()
        )
        stored = {state: (n, keys) for state, n, keys in open_rows}
        sessions = self.memory.written.sessions.values()
        if stored != _sums((state, pk) for pk, state, _ in sessions if state != m.CLOSED):
            raise Behind(f"open sessions differ from the database: {stored} in it")

    def _check_queue(self) -> None:
        """The memory agrees with the rows: the same queued and running jobs (how many
        and the sum of their keys, by status; each in memory with its key's status),
        the same open sessions."""
        memory = self.memory
        policy = memory.policy
        assert policy is not None
        jobs = memory.written.jobs
        if len(jobs) != len(policy.jobs):
            raise Behind("the jobs in memory and their keys differ")
        pending = models.Input.objects.filter(kind__in=[Kind.SUBMIT, Kind.CREATE_SESSION])
        rows = (
            models.Job.objects.filter(status__in=[m.QUEUED, m.RUNNING])
            .exclude(Exists(pending.filter(job=OuterRef("pk"))))
            .values_list("status")
            .annotate(n=Count("id"), keys=Sum("id"))
            .order_by()
        )
        stored = {status: (n, keys) for status, n, keys in rows}
        if stored != _sums((status, pk) for pk, status in jobs.values()):
            raise Behind(f"jobs differ from the database: {stored} in it")
        self._check_sessions()

    # ----------------------------------------------------------------- report
    def detail(self) -> dict[str, Any]:
        """What the cluster page and /metrics show of this standby."""
        return {
            "warm": self.warm,
            "lag_s": None if self.lag_s is None else round(self.lag_s, 3),
            "behind_steps": self.behind_steps,
            "behind_inputs": self.behind_inputs,
            "looked_at": self.looked_at.isoformat() if self.looked_at else None,
            "step": self.memory.seq,
            "applied": self.applied,
            "loads": self.loads,
            "reason": self.reason,
            "takeovers": self.takeovers,
            "audits": self.audits,
        }


def _sums(items: Iterable[tuple[str, int]]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for status, pk in items:
        n, keys = out.get(status, (0, 0))
        out[status] = (n + 1, keys + pk)
    return out


def _note_rows(
    memory: Leader,
    instant: m.Instant,
    restored: list[m.Session],
    keys: dict[str, dict[str, int]],
) -> None:
    """The leader's record of its rows (`Written`), as its step left it: the keys of
    the jobs and sessions the step named, with their new states."""
    written = memory.written
    for session in restored:  # recalled from their rows: the key is the row's
        written.sessions[session.id] = (session.seq, session.state, session.accepting_jobs)
    job_keys, session_keys = keys.get("jobs", {}), keys.get("sessions", {})
    for event in instant.events:
        subject = event.subject
        if isinstance(subject, m.Job):
            if subject.id in job_keys:
                written.jobs[subject.id] = (job_keys[subject.id], subject.status)
            subject = subject.session
        if isinstance(subject, m.Session) and subject.id in session_keys:
            pk = session_keys[subject.id]
            written.sessions[subject.id] = (pk, subject.state, subject.accepting_jobs)
