"""The scheduler leader: one long-lived policy in memory; the database stays the truth.

`Leader.step(now)` applies the inputs web processes committed since the last
step (in the order they were committed, each at its own instant), then
everything due up to `now`, and writes only what changed, with bulk writes, in
one transaction. The policy is built from the database once, when the process
becomes leader, and again only after a conflict (a row changed under it) or a
failed step. Every write of an existing row is conditional on what the leader
last wrote, so a job is started at most once even if two processes ever
believed they led.

A step costs what changed: the inputs read, the rows written and the events
logged, never the length of the queue.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings as django_settings
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef, Q, Sum

from scheduler import bulk, models
from scheduler.clock import from_ticks, maybe_from_ticks, span_ticks, ticks_span, to_ticks
from scheduler.policy import Policy, lane_depths, make_plan, waiting_lane
from scheduler.policy import model as m

log = logging.getLogger(__name__)
LOCK_KEY = 0x71DA5  # PostgreSQL advisory lock held by each step's transaction
INPUT_BATCH = 5_000  # inputs applied by one step at most; the rest wait for the next
DRAIN_INSTANTS = 50_000  # instants one draining step runs at most
SAMPLE_SPAN = timedelta(seconds=5)  # a new queue sample row at most this often per backend
SAMPLE_TICKS = SAMPLE_SPAN // timedelta(microseconds=1)
LANES = (m.RESERVATION, m.SESSION, m.FAIR_SHARE)
Kind = models.Input.Kind


class Conflict(Exception):
    """A row changed under the leader; the step is rolled back and the state reloaded."""


def policy_settings() -> m.Settings:
    """The scheduling settings of this deployment, in ticks."""
    conf = django_settings.QDASH
    seconds = 1_000_000
    return m.Settings(
        interactive_ttl=round(conf["INTERACTIVE_TTL"] * seconds),
        batch_interactive_ttl=round(conf["BATCH_INTERACTIVE_TTL"] * seconds),
        system_max_ttl=round(conf["SYSTEM_MAX_TTL"] * seconds),
        open_timeout=round(conf["OPEN_TIMEOUT"] * seconds),
        usage_window=round(conf["USAGE_WINDOW"] * seconds),
        backend_max_runtime=round(conf["BACKEND_MAX_RUNTIME"] * seconds),
    )


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


# Hooks called after a step commits, with its events (live updates, wake-ups).
after_commit: list[Callable[[list[m.Event]], None]] = []


def _notify(events: list[m.Event]) -> None:
    for hook in after_commit:
        hook(events)


def _lock() -> None:
    # SQLite transactions are IMMEDIATE (settings), which serialises writers already.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])


@dataclass
class _Sample:
    """The newest queue sample of a backend, as written."""

    pk: int | None = None
    at: int = 0
    depths: tuple[int, int, int] = (0, 0, 0)
    entered: list[int] = field(default_factory=lambda: [0, 0, 0])
    started: list[int] = field(default_factory=lambda: [0, 0, 0])


class Leader:
    """The scheduler leader's memory: the policy, and the rows as it last wrote them."""

    def __init__(self, *, settings: m.Settings | None = None, resumes: bool = False) -> None:
        self.settings = settings or policy_settings()
        # A leader that takes over a running system (`resumes`) never applies anything
        # before the last instant already decided (the last one in the event log).
        self.resumes = resumes
        self.decided: int | None = None  # last instant at which a job started or a timer fired
        self.policy: Policy | None = None
        self.jobs: dict[str, tuple[int, str]] = {}  # uid -> (pk, status written)
        self.sessions: dict[str, tuple[int, str, bool]] = {}  # uid -> (pk, state, accepting)
        self.backends: dict[str, int] = {}  # name -> pk
        self.instances: dict[str, int] = {}  # path -> pk
        self.samples: dict[str, _Sample] = {}
        self.loads = 0  # full loads so far (the first, then one per conflict or failure)

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
        with transaction.atomic():
            _lock()
            if self.policy is None:
                self.load(now)
                phases["load"] = time.perf_counter() - clock
            policy = self.policy
            assert policy is not None
            merged = m.Instant()
            rows = self._read_inputs(policy)
            refused = self._apply_inputs(policy, rows, now, merged, reports)
            outcomes: list[m.Outcome] = []
            self._recall_sessions(policy, _named_sessions(timed))
            for t, actions in timed:
                instant = policy.run_instant(max(t, policy.now or t), actions)
                merged.extend(instant)
                outcomes += instant.outcomes
            if policy.now is None or policy.now < now:
                merged.extend(policy.run_instant(now))
            for _ in range(DRAIN_INSTANTS if drain else 0):
                due = policy.next_due()
                if due is None:
                    break
                merged.extend(policy.run_instant(due))
                now = due
            self._note_decisions(merged)
            phases["apply"] = time.perf_counter() - clock - sum(phases.values())
            changed = self._save(merged, refused, job_fields, session_fields, now)
            if rows:
                models.Input.objects.filter(pk__in=[row.pk for row, _ in rows]).delete()
            transaction.on_commit(partial(_notify, list(merged.events)))
            phases["write"] = time.perf_counter() - clock - sum(phases.values())
        self._forget(merged)
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
                policy.add_backend(
                    m.Backend(
                        name=row.name, status=row.status, max_runtime=span_ticks(row.max_runtime)
                    )
                )
                self.backends[row.name] = row.pk

    def _recall_sessions(self, policy: Policy, uids: Iterable[str]) -> None:
        """Closed sessions the policy forgot, back in memory: an input names them."""
        missing = [uid for uid in uids if uid not in policy.sessions]
        if not missing:
            return
        rows = models.Session.objects.filter(uid__in=missing, state=m.CLOSED).select_related(
            "backend", "instance"
        )
        sessions = [session_from_row(row) for row in rows]
        policy.restore(sessions, [])
        for row in rows:
            self.sessions[row.uid] = (row.pk, row.state, row.accepting_jobs)

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
            return self._backend_action(row.target)
        if row.kind == Kind.RESERVATION:
            return _reservation_action(row.target)
        if row.kind == Kind.SHARE:
            share = (
                models.Instance.objects.filter(path=row.target)
                .values_list("share", flat=True)
                .first()
            )
            return m.SetShare(row.target, 1.0 if share is None else share)
        return None  # its job or session was deleted since

    def _backend_action(self, name: str) -> m.Action | None:
        row = models.Backend.objects.filter(name=name).first()
        if row is None:
            return None
        self.backends[name] = row.pk
        return m.PutBackend(name, span_ticks(row.max_runtime), row.status)

    def _apply_inputs(
        self,
        policy: Policy,
        rows: list[tuple[models.Input, m.Action | None]],
        now: int,
        merged: m.Instant,
        reports: Sequence[m.FinishJob] = (),
    ) -> list[tuple[models.Job, int, str]]:
        """Apply inputs in order, those of one instant together, and `reports` at `now`
        first in the pass of their instant; returns the refused submissions (their
        job, when, why).

        Time never goes back, and an instant is decided in one pass (docs/rules.md,
        "One instant"): an input stamped at or before an instant at which a job
        already started or a timer already fired (its web process committed it after
        the leader's step, or it waited for a new leader) applies at the next
        microsecond, and so do reports arriving for such an instant.
        """
        refused = []
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
                    self.jobs[row.job.uid] = (row.job.pk, m.QUEUED)
                if row.session is not None:
                    self.sessions[row.session.uid] = (row.session.pk, m.OPEN, True)
            given: list[m.Action] = []
            if waiting and at >= now:
                given, waiting = list(waiting), []
            actions = given + [action for _, action in batch if action is not None]
            instant = policy.run_instant(at, actions)
            self._note_decisions(instant)
            merged.extend(instant)
            answered = iter(instant.outcomes[len(given) :])
            for row, action in batch:
                if action is None:
                    continue
                outcome = next(answered)
                if isinstance(action, m.Submit) and not outcome.accepted:
                    assert row.job is not None
                    refused.append((row.job, at, outcome.code or m.SESSION_CLOSED))
                    self.jobs.pop(row.job.uid, None)
        return refused

    # ------------------------------------------------------------------- load
    def load(self, now: int) -> None:
        """Build the policy from the rows that can still change (not the inputs pending)."""
        settings = self.settings
        policy = Policy(settings)
        self.jobs, self.sessions = {}, {}
        backends = list(models.Backend.objects.all())
        self.backends = {b.name: b.pk for b in backends}
        for b in backends:
            policy.add_backend(
                m.Backend(name=b.name, status=b.status, max_runtime=span_ticks(b.max_runtime))
            )
        for r in models.Reservation.objects.filter(ended=False).select_related(
            "backend", "instance"
        ):
            policy.add_reservation(reservation_of(r))
        self.instances = dict(models.Instance.objects.values_list("path", "pk"))
        for path, share in models.Instance.objects.exclude(share=1.0).values_list("path", "share"):
            policy.set_share(path, share)
        policy.usage.load(
            (to_ticks(row["last"]), row["instance__path"], row["total"])
            for row in models.UsageCharge.objects.filter(
                ended_at__gt=from_ticks(now - settings.usage_window)
            )
            .values("instance__path")
            .annotate(total=Sum("microseconds"), last=Max("ended_at"))
        )
        pending = models.Input.objects.filter(kind__in=[Kind.SUBMIT, Kind.CREATE_SESSION])
        job_rows = list(
            models.Job.objects.filter(status__in=[m.QUEUED, m.RUNNING])
            .exclude(Exists(pending.filter(job=OuterRef("pk"))))
            .select_related("backend", "instance")
            .only(*JOB_COLUMNS)  # never the inputs or results
        )
        running_sessions = [
            r.session_id for r in job_rows if r.status == m.RUNNING and r.session_id
        ]
        sessions: dict[int, m.Session] = {}
        for session_row in (
            models.Session.objects.filter(
                ~Q(state=models.Session.State.CLOSED) | Q(pk__in=running_sessions)
            )
            .exclude(Exists(pending.filter(session=OuterRef("pk"))))
            .select_related("backend", "instance")
        ):
            sessions[session_row.pk] = session_from_row(session_row)
            self.sessions[session_row.uid] = (
                session_row.pk,
                session_row.state,
                session_row.accepting_jobs,
            )
        jobs = []
        applied = _application_order([row.pk for row in job_rows])
        for row in job_rows:
            job = job_from_row(row, sessions.get(row.session_id or 0))
            if row.pk in applied:  # equal submission times break as they did before
                job.seq = applied[row.pk]
                job.key = (job.submitted_at, job.seq)
            jobs.append(job)
            self.jobs[row.uid] = (row.pk, row.status)
        holds = {
            b.name: (sessions[b.hold_session_id].id, to_ticks(b.hold_since))
            for b in backends
            if b.hold_session_id in sessions and b.hold_since is not None
        }
        policy.restore(sessions.values(), jobs, holds)
        self.decided = None
        if self.resumes:  # what the previous leader decided last is in the log
            last = models.Event.objects.aggregate(last=Max("at"))["last"]
            if last is not None:
                policy.now = self.decided = to_ticks(last)
        self._load_samples()
        self.policy = policy
        self.loads += 1

    def _load_samples(self) -> None:
        self.samples = {}
        names = {pk: name for name, pk in self.backends.items()}
        latest = models.QueueSample.objects.filter(
            pk__in=models.QueueSample.objects.values("backend")
            .annotate(last=Max("pk"))
            .values("last")
        )
        for row in latest:
            self.samples[names[row.backend_id]] = _Sample(
                pk=row.pk,
                at=to_ticks(row.at),
                depths=(row.reservation, row.session, row.fair_share),
                entered=[row.entered_reservation, row.entered_session, row.entered_fair_share],
                started=[row.started_reservation, row.started_session, row.started_fair_share],
            )

    # ------------------------------------------------------------------- save
    def _save(
        self,
        instant: m.Instant,
        refused: list[tuple[models.Job, int, str]],
        job_fields: Mapping[str, dict[str, Any]],
        session_fields: Mapping[str, dict[str, Any]],
        now: int,
    ) -> set[str]:
        """Write every entity the events name, the refusals, the charges, the log and
        the queue samples. Returns the backends that changed."""
        touched: dict[type, dict[Any, None]] = {
            kind: {} for kind in (m.Job, m.Session, m.Backend, m.Reservation)
        }
        for event in instant.events:
            touched[type(event.subject)][event.subject] = None
        self._save_sessions(list(touched[m.Session]), session_fields)
        self._save_jobs(list(touched[m.Job]), job_fields)
        backends = dict(touched[m.Backend])
        backends.update(
            (e.subject, None) for e in instant.events if e.kind in ("hold_started", "hold_ended")
        )
        self._save_backends(list(backends))
        self._save_reservations(list(touched[m.Reservation]))
        self._save_refused(refused)
        self._save_charges(instant.charges)
        self._save_log(instant.events, refused)
        changed = {job.backend for job in touched[m.Job]}
        changed |= {session.backend for session in touched[m.Session]}
        changed |= {backend.name for backend in backends}
        changed |= {reservation.backend for reservation in touched[m.Reservation]}
        changed |= {job.backend.name for job, _, _ in refused}
        self._save_samples(instant.events, changed, now)
        return changed

    def _save_sessions(
        self, sessions: list[m.Session], extra: Mapping[str, dict[str, Any]]
    ) -> None:
        new = [s for s in sessions if s.id not in self.sessions]
        created = {s.id for s in new}
        names, more = _with_extra(models.Session, SESSION_NEW, [extra.get(s.id, {}) for s in new])
        keys = bulk.insert(
            models.Session,
            names,
            [
                (
                    s.id,
                    self.backends[s.backend],
                    self._instance_pk(s.instance),
                    s.mode,
                    ticks_span(s.interactive_ttl),
                    *_session_values(s),
                    *values,
                )
                for s, values in zip(new, more, strict=True)
            ],
        )
        for session, pk in zip(new, keys, strict=True):
            self.sessions[session.id] = (pk, session.state, session.accepting_jobs)
        groups: dict[tuple[str, bool], list[m.Session]] = defaultdict(list)
        for s in sessions:
            if s.id not in created:
                _, state, accepting = self.sessions[s.id]
                groups[state, accepting].append(s)
        for (state, accepting), group in groups.items():
            written = bulk.update(
                models.Session,
                SESSION_FIELDS,
                [(self.sessions[s.id][0], _session_values(s)) for s in group],
                where={"state": state, "accepting_jobs": accepting},
            )
            if written != len(group):
                raise Conflict(f"{len(group) - written} session(s) changed under the leader")
            for s in group:
                self.sessions[s.id] = (self.sessions[s.id][0], s.state, s.accepting_jobs)

    def _save_jobs(self, jobs: list[m.Job], extra: Mapping[str, dict[str, Any]]) -> None:
        new = [j for j in jobs if j.id not in self.jobs]
        created = {j.id for j in new}
        names, more = _with_extra(models.Job, JOB_NEW, [extra.get(j.id, {}) for j in new])
        keys = bulk.insert(
            models.Job,
            names,
            [
                (
                    j.id,
                    self.backends[j.backend],
                    self._instance_pk(j.instance),
                    self.sessions[j.session.id][0] if j.session is not None else None,
                    ticks_span(j.duration),
                    ticks_span(j.expected),
                    ticks_span(j.max_execution_time),
                    *_job_values(j),
                    *values,
                )
                for j, values in zip(new, more, strict=True)
            ],
        )
        for job, pk in zip(new, keys, strict=True):
            self.jobs[job.id] = (pk, job.status)
        groups: dict[str, list[m.Job]] = defaultdict(list)
        for j in jobs:
            if j.id not in created:
                groups[self.jobs[j.id][1]].append(j)
        for status, group in groups.items():
            written = bulk.update(
                models.Job,
                JOB_FIELDS,
                [(self.jobs[j.id][0], _job_values(j)) for j in group],
                where={"status": status},
            )
            if written != len(group):
                raise Conflict(f"{len(group) - written} job(s) changed under the leader")
        for j in jobs:
            self.jobs[j.id] = (self.jobs[j.id][0], j.status)

    def _save_backends(self, backends: list[m.Backend]) -> None:
        bulk.update(
            models.Backend,
            ["status", "hold_session", "hold_since"],
            [
                (
                    self.backends[b.name],
                    (
                        b.status,
                        self.sessions[b.hold_session.id][0] if b.hold_session else None,
                        maybe_from_ticks(b.hold_since),
                    ),
                )
                for b in backends
            ],
        )

    def _save_reservations(self, reservations: list[m.Reservation]) -> None:
        # Rows an operator deleted meanwhile are simply not there.
        bulk.update(
            models.Reservation,
            ["started", "ended"],
            [(int(r.id), (r.started, r.ended)) for r in reservations if not r.removed],
        )

    def _save_refused(self, refused: list[tuple[models.Job, int, str]]) -> None:
        """A submission its web process accepted but the rules refuse (it raced a
        closing session) fails clearly, with the refusal's code."""
        for job, at, code in refused:
            written = models.Job.objects.filter(pk=job.pk, status=m.QUEUED).update(
                status=m.FAILED, error=code, ended_at=from_ticks(at)
            )
            if written != 1:
                raise Conflict(f"job {job.uid} changed under the leader")

    def _save_charges(self, charges: list[m.Charge]) -> None:
        run, hold = models.UsageCharge.Kind.RUN, models.UsageCharge.Kind.HOLD
        bulk.insert(
            models.UsageCharge,
            ["instance_id", "kind", "microseconds", "ended_at", "job_id", "session_id"],
            [
                (
                    self._instance_pk(c.instance),
                    run if isinstance(c.source, m.Job) else hold,
                    c.amount,
                    from_ticks(c.end),
                    self.jobs[c.source.id][0] if isinstance(c.source, m.Job) else None,
                    self.sessions[c.source.id][0] if isinstance(c.source, m.Session) else None,
                )
                for c in charges
            ],
        )

    def _save_log(
        self, events: Sequence[m.Event], refused: list[tuple[models.Job, int, str]]
    ) -> None:
        rows = []
        for event in events:
            subject = event.subject
            job = session = reservation = None
            if isinstance(subject, m.Job):
                job = self.jobs[subject.id][0]
                if subject.session is not None:
                    session = self.sessions[subject.session.id][0]
                backend = self.backends[subject.backend]
            elif isinstance(subject, m.Session):
                session = self.sessions[subject.id][0]
                backend = self.backends[subject.backend]
            elif isinstance(subject, m.Backend):
                backend = self.backends[subject.name]
            else:
                reservation = None if subject.removed else int(subject.id)
                backend = self.backends[subject.backend]
            rows.append(
                (from_ticks(event.at), event.kind, event.detail, job, session, backend, reservation)
            )
        for row, at, code in refused:
            rows.append(
                (
                    from_ticks(at),
                    "job_refused",
                    {"error": code},
                    row.pk,
                    row.session_id,
                    row.backend_id,
                    None,
                )
            )
        bulk.insert(models.Event, EVENT_FIELDS, rows)

    def _save_samples(self, events: Sequence[m.Event], changed: set[str], now: int) -> None:
        """Each changed backend's lanes: the newest sample updated, or a new one when
        the newest is older than SAMPLE_SPAN."""
        policy = self.policy
        assert policy is not None
        for event in events:
            if event.kind not in ("job_submitted", "job_started"):
                continue
            job = event.subject
            sample = self.samples.setdefault(job.backend, _Sample())
            if event.kind == "job_started":
                sample.started[LANES.index(event.detail["lane"])] += 1
            else:
                lane = job.lane or waiting_lane(policy.backends[job.backend], job)
                sample.entered[LANES.index(lane)] += 1
        new: list[tuple[_Sample, tuple[Any, ...]]] = []
        updated = []
        at = from_ticks(now)
        for name in sorted(changed):
            if name not in policy.backends:
                continue
            sample = self.samples.setdefault(name, _Sample())
            depths = lane_depths(policy, name)
            sample.depths = (depths[m.RESERVATION], depths[m.SESSION], depths[m.FAIR_SHARE])
            values = (at, *sample.depths, *sample.entered, *sample.started)
            if sample.pk is None or now - sample.at >= SAMPLE_TICKS:
                new.append((sample, (self.backends[name], *values)))
                sample.at = now
            else:
                updated.append((sample.pk, values))
        keys = bulk.insert(models.QueueSample, ["backend_id", *SAMPLE_FIELDS], [r for _, r in new])
        for (sample, _), pk in zip(new, keys, strict=True):
            sample.pk = pk
        bulk.update(models.QueueSample, SAMPLE_FIELDS, updated)

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
                self.jobs.pop(job.id, None)
        for session in sessions:
            if session.id not in policy.sessions:
                self.sessions.pop(session.id, None)

    def _instance_pk(self, path: str) -> int:
        pk = self.instances.get(path)
        if pk is None:
            pk = self.instances[path] = instances_ensure(path=path).pk
        return pk


SESSION_KINDS = (Kind.CLOSE_SESSION, Kind.CANCEL_SESSION)
# Events that decide their instant: an input arriving later for it applies just after.
DECISIONS = frozenset({"job_started", "timer_fired"})


def _application_order(pks: list[int], chunk: int = 10_000) -> dict[int, int]:
    """Job pk -> the id of its `job_submitted` event: the order the leader applied the
    submissions in (web processes may create job rows in another order)."""
    order: dict[int, int] = {}
    for i in range(0, len(pks), chunk):
        order.update(
            models.Event.objects.filter(kind="job_submitted", job_id__in=pks[i : i + chunk])
            .values_list("job_id", "id")
            .iterator()
        )
    return order


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


EVENT_FIELDS = ["at", "kind", "detail", "job_id", "session_id", "backend_id", "reservation_id"]
SESSION_FIELDS = [
    "state",
    "accepting_jobs",
    "created_at",
    "max_ttl",
    "ttl_deadline",
    "interactive_deadline",
    "open_deadline",
    "bound_reservation",
    "closed_reason",
]
SESSION_NEW = ["uid", "backend_id", "instance_id", "mode", "interactive_ttl", *SESSION_FIELDS]
JOB_FIELDS = ["status", "lane", "error", "submitted_at", "started_at", "ended_at", "runtime_limit"]
JOB_NEW = [
    "uid",
    "backend_id",
    "instance_id",
    "session_id",
    "duration",
    "expected_duration",
    "max_execution_time",
    *JOB_FIELDS,
]
SAMPLE_FIELDS = [
    "at",
    "reservation",
    "session",
    "fair_share",
    "entered_reservation",
    "entered_session",
    "entered_fair_share",
    "started_reservation",
    "started_session",
    "started_fair_share",
]


def _session_values(session: m.Session) -> tuple[Any, ...]:
    """A session's SESSION_FIELDS, in order."""
    return (
        session.state,
        session.accepting_jobs,
        from_ticks(session.created_at),
        ticks_span(session.max_ttl),
        maybe_from_ticks(session.ttl_deadline),
        maybe_from_ticks(session.interactive_deadline),
        maybe_from_ticks(session.open_deadline),
        int(session.bound_reservation) if session.bound_reservation else None,
        session.closed_reason or "",
    )


def _job_values(job: m.Job) -> tuple[Any, ...]:
    """A job's JOB_FIELDS, in order."""
    return (
        job.status,
        job.lane or "",
        job.error or "",
        from_ticks(job.submitted_at),
        maybe_from_ticks(job.started_at),
        maybe_from_ticks(job.ended_at),
        ticks_span(job.limit),
    )


def _with_extra(
    model: type[Any], names: list[str], extra: list[dict[str, Any]]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The columns of new rows plus those some rows give (the others get the default)."""
    keys = sorted({key for fields in extra for key in fields})
    defaults = {
        key: model._meta.get_field(key.removesuffix("_id")).get_default()
        if key.endswith("_id") and key != "program_id"
        else model._meta.get_field(key).get_default()
        for key in keys
    }
    return [*names, *keys], [tuple(fields.get(k, defaults[k]) for k in keys) for fields in extra]


def reservation_of(row: models.Reservation) -> m.Reservation:
    """The policy's view of a stored reservation."""
    return m.Reservation(
        id=str(row.pk),
        backend=row.backend.name,
        instance=row.instance.path,
        start=to_ticks(row.start),
        end=to_ticks(row.end),
        exclusive=row.exclusive,
        started=row.started,
        ended=row.ended,
    )


def _reservation_action(target: str) -> m.Action:
    row = models.Reservation.objects.filter(pk=int(target)).select_related("backend", "instance")
    found = row.first()
    if found is None:
        return m.RemoveReservation(target)
    r = reservation_of(found)
    return m.PutReservation(r.backend, r.instance, r.id, r.start, r.end, r.exclusive)


# ------------------------------------------------------------- rows to rules
def session_from_row(row: models.Session) -> m.Session:
    """The policy's view of a stored session."""
    return m.Session(
        id=row.uid,
        backend=row.backend.name,
        instance=row.instance.path,
        created_at=to_ticks(row.created_at),
        seq=row.pk,
        interactive_ttl=span_ticks(row.interactive_ttl) or 0,
        mode=row.mode,
        state=row.state,
        accepting_jobs=row.accepting_jobs,
        max_ttl=span_ticks(row.max_ttl),
        ttl_deadline=_ticks(row.ttl_deadline),
        interactive_deadline=_ticks(row.interactive_deadline),
        open_deadline=_ticks(row.open_deadline),
        bound_reservation=str(row.bound_reservation_id) if row.bound_reservation_id else None,
        closed_reason=row.closed_reason or None,
    )


JOB_COLUMNS = (
    "uid",
    "instance__path",
    "backend__name",
    "submitted_at",
    "duration",
    "max_execution_time",
    "session_id",
    "status",
    "lane",
    "started_at",
    "ended_at",
    "error",
    "runtime_limit",
    "expected_duration",
)


def job_from_row(row: models.Job, session: m.Session | None) -> m.Job:
    """The policy's view of a stored job."""
    job = m.Job(
        id=row.uid,
        instance=row.instance.path,
        backend=row.backend.name,
        submitted_at=to_ticks(row.submitted_at),
        seq=row.pk,
        duration=span_ticks(row.duration),
        max_execution_time=span_ticks(row.max_execution_time),
        session=session,
        status=row.status,
        lane=row.lane or None,
        started_at=_ticks(row.started_at),
        ended_at=_ticks(row.ended_at),
        error=row.error or None,
        limit=span_ticks(row.runtime_limit),
    )
    job.expected = span_ticks(row.expected_duration)
    return job


def _ticks(moment: datetime | None) -> int | None:
    return None if moment is None else to_ticks(moment)


def instances_ensure(*, path: str) -> models.Instance:
    """The instance-tree node at `path`, created with its ancestors if missing."""
    parent = None
    node = None
    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        node, _ = models.Instance.objects.get_or_create(
            path="/".join(parts[:depth]), defaults={"parent": parent}
        )
        parent = node
    assert node is not None
    return node


# --------------------------------------------------------- one-off stepping
def step(
    actions: Sequence[m.Action] = (),
    *,
    at: datetime,
    settings: m.Settings | None = None,
    job_fields: Mapping[str, dict[str, Any]] | None = None,
    session_fields: Mapping[str, dict[str, Any]] | None = None,
) -> StepReport:
    """One step of a leader loaded afresh: the committed inputs, then `actions` at `at`,
    and the plan published at once.

    For one-off work where no leader runs in this process: the eager mode of
    tests and single commands. The live scheduler keeps one `Leader` instead.
    """
    from scheduler.plans import Publisher

    ticks = to_ticks(at)
    leader = Leader(settings=settings)
    report = leader.step(
        ticks, [(ticks, list(actions))], job_fields=job_fields, session_fields=session_fields
    )
    assert leader.policy is not None
    Publisher().publish(make_plan(leader.policy, ticks))
    return report
