"""The step: the leader applies what web processes committed, then what is due.

`Leader.step(now)` turns the inputs committed since the last step into the
policy's actions (in the order they were committed, each at its own instant),
applies them and everything due up to `now`, and writes only what changed
(`save`) in one transaction. The policy stays in memory between steps; it is
loaded (`load`) when the process becomes leader, and again only after a
conflict (a row changed under it) or a failed step.

A step costs what changed: the inputs read, the rows written and the events
logged, never the length of the queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import transaction

from scheduler import allocations, live, models
from scheduler.allocations import change_of
from scheduler.clock import span_ticks, to_ticks
from scheduler.engine import journal
from scheduler.engine.journal import Record
from scheduler.engine.load import load
from scheduler.engine.lock import step_lock
from scheduler.engine.rows import Written, backend_of, reservation_of, session_from_row
from scheduler.engine.save import Conflict, Refusal, save
from scheduler.policy import Policy
from scheduler.policy import model as m
from scheduler.policy.allocations import counts_from
from scheduler.rule_settings import deployment_settings
from scheduler.services import instances_ensure

log = logging.getLogger(__name__)
INPUT_BATCH = 5_000  # inputs applied by one step at most; the rest wait for the next
DRAIN_INSTANTS = 50_000  # instants one draining step runs at most
Kind = models.Input.Kind
# Inputs that name an existing session (a refusal must see a closed one as closed).
SESSION_KINDS = (Kind.CLOSE_SESSION, Kind.CANCEL_SESSION)
# Why a session the web process stored was never created by the rules (its closed reason).
REFUSED = (m.ALLOCATION_EXHAUSTED, m.UNKNOWN_BACKEND)
# Events that decide their instant: an input arriving later for it applies just after.
DECISIONS = frozenset({"job_started", "timer_fired"})


# Inputs that name an existing session (a refusal must see a closed one as closed).
@dataclass(kw_only=True)
class StepReport:
    """What one step did."""

    instant: m.Instant  # every change, in order (the outcomes are empty: see below)
    outcomes: list[m.Outcome]  # answers to the directly given actions, in order
    inputs: int  # inputs applied
    refused: int  # submissions the rules refused after their web process accepted them
    next_due: int | None  # when a job ends or a timer fires next
    changed: set[str]  # backends whose queue, running job or session changed
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase


class Leader:
    """The scheduler leader's memory: the policy, and the rows as it last wrote them."""

    def __init__(
        self,
        *,
        settings: m.Settings | None = None,
        resumes: bool = False,
        on_commit: Callable[[list[m.Event]], None] = live.notify,
    ) -> None:
        self.settings = settings or deployment_settings()
        # Told of each committed step's events: by default the dashboards (scheduler.live).
        self.on_commit = on_commit
        # A leader that takes over a running system (`resumes`) never applies anything
        # before the last instant already decided (the last one in the event log).
        self.resumes = resumes
        self.decided: int | None = None  # last instant at which a job started or a timer fired
        self.policy: Policy | None = None
        self.written = Written()  # the rows as the leader last wrote them
        self.loads = 0  # full loads so far (the first, then one per conflict or failure)
        self.seq = 0  # the newest row of the journal (`scheduler.engine.journal`) it knows
        self.record = Record()  # the current step's calls on the policy, for the journal
        # A warm start instead of a full load, once (a standby's memory: `engine.standby`);
        # answers whether it filled this leader.
        self.takeover: Callable[[Leader, int], bool] | None = None

    # ------------------------------------------------------------------- step
    def step(
        self,
        now: int,
        timed: Sequence[tuple[int, Sequence[m.Action]]] = (),
        *,
        job_fields: Mapping[str, dict[str, Any]] | None = None,
        session_fields: Mapping[str, dict[str, Any]] | None = None,
        reports: Sequence[m.FinishJob] = (),
        drain: bool = False,
        attempts: int = 3,
    ) -> StepReport:
        """Apply the committed inputs, then `timed` batches of actions at their instants,
        then everything due up to `now`, and write the changes in one transaction.

        `reports` are executors' reports of jobs' ends, applied at `now` (or, if that
        instant is decided already, at the next microsecond) before the inputs of
        that instant, in the same pass.

        `job_fields` and `session_fields` give the columns (owner, program, inputs)
        of jobs and sessions that actions in `timed` create, by their id. With
        `drain`, the step goes on past `now` through every instant that has
        something due (up to DRAIN_INSTANTS of them): a simulation's tail.
        """
        for attempt in range(attempts):
            try:
                return self._attempt(
                    now, timed, job_fields or {}, session_fields or {}, reports, drain
                )
            except Conflict:
                log.warning("scheduler step conflicted; reloading the state")
                self.policy = None
                if attempt == attempts - 1:
                    raise
            except BaseException:
                self.policy = None  # memory may be ahead of the rolled-back database
                raise
        raise AssertionError("unreachable")

    def _attempt(
        self,
        now: int,
        timed: Sequence[tuple[int, Sequence[m.Action]]],
        job_fields: Mapping[str, dict[str, Any]],
        session_fields: Mapping[str, dict[str, Any]],
        reports: Sequence[m.FinishJob],
        drain: bool,
    ) -> StepReport:
        phases: dict[str, float] = {}
        clock = time.perf_counter()
        self.record = Record(loaded=self.record.loaded)  # a load outside a step counts
        with transaction.atomic():
            step_lock()
            if self.policy is None:
                self._start(now)
                phases["load"] = time.perf_counter() - clock
            policy = self.policy
            assert policy is not None
            merged = m.Instant()
            rows = self._read_inputs(policy)
            since = self._history_needed(policy, rows, timed, now)
            if since is not None:  # an allocation counts charges the leader let go of
                self.load(now, since=since)
                policy = self.policy
                assert policy is not None
                rows = self._read_inputs(policy)
                phases["load"] = time.perf_counter() - clock
            refused = self._apply_inputs(policy, rows, now, merged, reports)
            outcomes: list[m.Outcome] = []
            self._recall_sessions(policy, _named_sessions(timed))
            for t, actions in timed:
                instant = self._run(policy, max(t, policy.now or t), actions)
                merged.extend(instant)
                outcomes += instant.outcomes
            if policy.now is None or policy.now < now:
                merged.extend(self._run(policy, now))
            for _ in range(DRAIN_INSTANTS if drain else 0):
                due = policy.next_due()
                if due is None:
                    break
                merged.extend(self._run(policy, due))
                now = due
            self._note_decisions(merged)
            _store_allocations(timed)
            phases["apply"] = time.perf_counter() - clock - sum(phases.values())
            changed = save(self.written, policy, merged, refused, job_fields, session_fields, now)
            if rows:
                models.Input.objects.filter(pk__in=[row.pk for row, _ in rows]).delete()
            seq = self.seq
            if self.record.worth_writing(merged, len(rows)):
                seq += 1  # unique: a second process that believes it leads fails here
                journal.write(seq, self.record, policy, self.written, merged, len(rows))
            transaction.on_commit(partial(self.on_commit, list(merged.events)))
            phases["write"] = time.perf_counter() - clock - sum(phases.values())
        self.seq, self.record = seq, Record()
        self._forget(merged)
        policy.forget_charges()
        return StepReport(
            instant=merged,
            outcomes=outcomes,
            inputs=len(rows),
            refused=len(refused),
            next_due=policy.next_due(),
            changed=changed,
            phases=phases,
        )

    def next_due(self) -> int | None:
        return None if self.policy is None else self.policy.next_due()

    def _run(self, policy: Policy, t: int, actions: Sequence[m.Action] = ()) -> m.Instant:
        """One instant of the policy, recorded for the journal."""
        self.record.run(t, actions)
        return policy.run_instant(t, actions)

    def _start(self, now: int) -> None:
        """The state at the start of a step with none in memory: a warm standby's when
        one is offered and agrees with the database, else a full load."""
        takeover, self.takeover = self.takeover, None
        if takeover is not None and takeover(self, now):
            return
        self.load(now)

    def _note_decisions(self, instant: m.Instant) -> None:
        for event in instant.events:
            if event.kind in DECISIONS and (self.decided is None or event.at > self.decided):
                self.decided = event.at

    # ----------------------------------------------------------------- inputs
    def _read_inputs(self, policy: Policy) -> list[tuple[models.Input, m.Action | None]]:
        # A cheap look first: most steps (an executor's report, a timer) find none.
        ids = list(models.Input.objects.order_by("id").values_list("id", flat=True)[:INPUT_BATCH])
        if not ids:
            return []
        rows = list(
            models.Input.objects.filter(id__in=ids)
            .select_related(
                "job__backend",
                "job__instance",
                "job__session",
                "session__backend",
                "session__instance",
            )
            .defer("job__params", "job__result")
            .order_by("id")
        )
        named = {row.target for row in rows if row.kind in SESSION_KINDS}
        named |= {row.job.session.uid for row in rows if row.job and row.job.session}
        self._recall_sessions(policy, named)
        backends = [row.job.backend for row in rows if row.job is not None]
        backends += [row.session.backend for row in rows if row.session is not None]
        statuses = {row.target for row in rows if row.kind == Kind.BACKEND_STATUS}
        if statuses - set(policy.backends):
            backends += models.Backend.objects.filter(name__in=statuses - set(policy.backends))
        self._recall_backends(policy, backends)
        return [(row, self._action(row)) for row in rows]

    def _recall_backends(self, policy: Policy, rows: Iterable[models.Backend]) -> None:
        """Backends an input names that were added without telling the leader."""
        for row in rows:
            if row.name not in policy.backends:
                backend = backend_of(row)
                self.record.backend(backend)
                policy.add_backend(backend)
                self.written.backends[row.name] = row.pk

    def _recall_sessions(self, policy: Policy, uids: Iterable[str]) -> None:
        """Closed sessions the policy forgot, back in memory: an input names them."""
        missing = [uid for uid in uids if uid not in policy.sessions]
        if not missing:
            return
        rows = (
            models.Session.objects.filter(uid__in=missing, state=m.CLOSED)
            .exclude(closed_reason__in=REFUSED)  # never created: jobs naming it meet unknown
            .select_related("backend", "instance")
        )
        sessions = [session_from_row(row) for row in rows]
        self.record.restore(sessions)
        policy.restore(sessions, [])
        for row in rows:
            self.written.sessions[row.uid] = (row.pk, row.state, row.accepting_jobs)

    def _action(self, row: models.Input) -> m.Action | None:
        job, session = row.job, row.session
        if row.kind == Kind.SUBMIT and job is not None:
            return m.Submit(
                job=job.uid,
                instance=job.instance.path,
                backend=job.backend.name,
                duration=span_ticks(job.duration),
                session=job.session.uid if job.session else None,
                start_session=session is not None,
                max_execution_time=span_ticks(job.max_execution_time),
                mode=session.mode if session is not None else m.DEDICATED,
                expected=span_ticks(job.expected_duration),
            )
        if row.kind == Kind.CREATE_SESSION and session is not None:
            return m.CreateSession(
                session=session.uid,
                instance=session.instance.path,
                backend=session.backend.name,
                max_ttl=row.detail.get("max_ttl"),
                mode=session.mode,
            )
        if row.kind == Kind.CANCEL_JOB and job is not None:
            return m.CancelJob(job.uid)
        if row.kind == Kind.FINISH_JOB and job is not None:
            return m.FinishJob(
                job.uid, row.detail.get("status", m.COMPLETED), row.detail.get("error")
            )
        if row.kind == Kind.CLOSE_SESSION:
            return m.CloseSession(row.target)
        if row.kind == Kind.CANCEL_SESSION:
            return m.CancelSession(row.target)
        if row.kind == Kind.BACKEND_STATUS:
            return m.SetBackendStatus(row.target, row.detail["status"])
        if row.kind == Kind.BACKEND:
            return self._backend_action(row.target, row.detail)
        if row.kind == Kind.RESERVATION:
            return _reservation_action(row.target, row.detail)
        if row.kind == Kind.SHARE and "share" in row.detail:
            return m.SetShare(row.target, row.detail["share"])
        if row.kind == Kind.SHARE:
            share = (
                models.Instance.objects.filter(path=row.target)
                .values_list("share", flat=True)
                .first()
            )
            return m.SetShare(row.target, 1.0 if share is None else share)
        if row.kind == Kind.ALLOCATION:
            return change_of(row.target, row.detail)
        return None  # its job or session was deleted since

    def _backend_action(self, name: str, detail: dict[str, Any]) -> m.Action | None:
        row = models.Backend.objects.filter(name=name).first()
        if row is None:
            return None
        self.written.backends[name] = row.pk
        limit = detail["max_runtime"] if "max_runtime" in detail else span_ticks(row.max_runtime)
        return m.PutBackend(name, limit, row.status)

    def _apply_inputs(
        self,
        policy: Policy,
        rows: list[tuple[models.Input, m.Action | None]],
        now: int,
        merged: m.Instant,
        reports: Sequence[m.FinishJob] = (),
    ) -> list[Refusal]:
        """Apply inputs in order, those of one instant together, and `reports` at `now`
        first in the pass of their instant; returns the refused submissions (their
        job, when, why).

        Time never goes back, and an instant is decided in one pass (docs/rules.md,
        "One instant"): an input stamped at or before an instant at which a job
        already started or a timer already fired (its web process committed it after
        the leader's step, or it waited for a new leader) applies at the next
        microsecond, and so do reports arriving for such an instant.
        """
        refused: list[Refusal] = []
        waiting = list(reports)
        i = 0
        while i < len(rows) or waiting:
            floors = [policy.now, None if self.decided is None else self.decided + 1]
            floor = max((f for f in floors if f is not None), default=None)
            if i < len(rows):
                at = _instant(rows[i][0], floor, now)
            else:
                at = now if floor is None else max(now, floor)
            batch = []
            while i < len(rows) and _instant(rows[i][0], floor, now) == at:
                batch.append(rows[i])
                i += 1
            for row, _ in batch:  # rows the web process wrote with the input
                if row.kind == Kind.SUBMIT and row.job is not None:
                    self.written.jobs[row.job.uid] = (row.job.pk, m.QUEUED)
                if row.session is not None:
                    self.written.sessions[row.session.uid] = (row.session.pk, m.OPEN, True)
            given: list[m.Action] = []
            if waiting and at >= now:
                given, waiting = list(waiting), []
            actions = given + [action for _, action in batch if action is not None]
            instant = self._run(policy, at, actions)
            self._note_decisions(instant)
            merged.extend(instant)
            answered = iter(instant.outcomes[len(given) :])
            for row, action in batch:
                if action is None:
                    continue
                outcome = next(answered)
                if outcome.accepted:
                    continue
                code = outcome.code or m.SESSION_CLOSED
                if row.session is not None:  # a new session the rules did not create
                    refused.append((row.session, at, code))
                    self.written.sessions.pop(row.session.uid, None)
                if isinstance(action, m.Submit):
                    assert row.job is not None
                    refused.append((row.job, at, code))
                    self.written.jobs.pop(row.job.uid, None)
        return refused

    # ------------------------------------------------------------------- load
    def load(self, now: int, *, since: int | None = None) -> None:
        """Build the policy from the rows that can still change (not the inputs pending);
        `since`: with every usage charge that ended since then, one by one.

        Loading again while it leads, the leader keeps its time: it never goes back.
        """
        previous = self.policy
        loaded = load(self.settings, now, resumes=self.resumes, since=since)
        self.policy, self.written = loaded.policy, loaded.written
        self.seq = journal.last_seq()
        self.record.loaded = True  # a standby cannot follow this step: it loads too
        if previous is None:
            self.decided = loaded.decided
        elif previous.now is not None:
            policy = loaded.policy
            policy.now = previous.now if policy.now is None else max(policy.now, previous.now)
            policy.last_activity = previous.last_activity
        self.loads += 1

    def _history_needed(
        self,
        policy: Policy,
        rows: list[tuple[models.Input, m.Action | None]],
        timed: Sequence[tuple[int, Sequence[m.Action]]],
        now: int,
    ) -> int | None:
        """The charges an allocation this step sets counts, from when, if the policy let
        go of some of them (`usage.forgotten`): they are loaded again first."""
        forgotten = policy.usage.forgotten
        if forgotten is None:
            return None
        changes = [(min(to_ticks(r.at), now), a) for r, a in rows if r.kind == Kind.ALLOCATION]
        changes += [(t, a) for t, actions in timed for a in actions]
        needed = [
            counts_from(allocation, self.settings.usage_window, t)
            for t, action in changes
            if isinstance(action, m.PutAllocation) and (allocation := action.allocation())
        ]
        earliest = min((since for since in needed if since is not None), default=None)
        return earliest if earliest is not None and earliest < forgotten else None

    def _forget(self, instant: m.Instant) -> None:
        """Drop what ended from memory, now that it is written."""
        policy = self.policy
        assert policy is not None
        jobs = [e.subject for e in instant.events if isinstance(e.subject, m.Job)]
        sessions = [e.subject for e in instant.events if isinstance(e.subject, m.Session)]
        sessions += [job.session for job in jobs if job.session is not None]
        policy.forget(jobs, sessions)
        for job in jobs:
            if job.status in m.FINAL_STATES:
                self.written.jobs.pop(job.id, None)
        for session in sessions:
            if session.id not in policy.sessions:
                self.written.sessions.pop(session.id, None)


def _instant(row: models.Input, floor: int | None, now: int) -> int:
    """The instant an input applies at: its own (at most `now`), or the first instant
    not decided yet (`floor`) when its own is decided already."""
    at = min(to_ticks(row.at), now)
    return at if floor is None or at >= floor else floor


def _named_sessions(timed: Sequence[tuple[int, Sequence[m.Action]]]) -> set[str]:
    """Existing sessions the actions name (a refusal must see a closed one as closed)."""
    named: set[str] = set()
    for _, actions in timed:
        for a in actions:
            joins = isinstance(a, m.Submit) and not a.start_session
            if joins or isinstance(a, m.CloseSession | m.CancelSession):
                session = getattr(a, "session", None)
                if session is not None:
                    named.add(session)
    return named


def _store_allocations(timed: Sequence[tuple[int, Sequence[m.Action]]]) -> None:
    """Allocations the caller set directly (a simulation), stored as an operator's
    change stores them, so a leader that loads again finds them."""
    for _, actions in timed:
        for a in actions:
            if isinstance(a, m.PutAllocation):
                allocations.store(instances_ensure(path=a.node), a.allocation())


def _reservation_action(target: str, detail: dict[str, Any]) -> m.Action:
    """The window the operator's change set (none: deleted); read from the row when the
    input does not say."""
    if "after" in detail:
        w = detail["after"]
        if w is None:
            return m.RemoveReservation(target)
        return m.PutReservation(
            w["backend"], w["instance"], target, w["start"], w["end"], w["exclusive"]
        )
    row = models.Reservation.objects.filter(pk=int(target)).select_related("backend", "instance")
    found = row.first()
    if found is None:
        return m.RemoveReservation(target)
    r = reservation_of(found)
    return m.PutReservation(r.backend, r.instance, r.id, r.start, r.end, r.exclusive)
