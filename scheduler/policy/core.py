"""The scheduling rules of docs/rules.md as a pure state machine.

`Policy.run_instant(t, actions)` is the only way time moves: it processes every
instant before `t` that has something due, then the instant `t` itself in the
order of "One instant" in docs/rules.md. No clock, no I/O: callers bring the time and the state.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from heapq import heappop, heappush
from itertools import count
from math import inf
from typing import Any

from . import model as m
from . import timers
from .allocations import Allocations, gated_fair_share
from .model import (
    ACTIVE,
    CANCELLED,
    CLOSED,
    COMPLETED,
    FAILED,
    ONLINE,
    OPEN,
    QUEUED,
    RUNNING,
    WAITING_STATES,
    Backend,
    Charge,
    Event,
    Instant,
    Job,
    Outcome,
    Reservation,
    ReservationWarning,
    Session,
    Settings,
)
from .queues import ROOT, BackendQueues, UsageLedger

FINAL = m.FINAL_STATES

# Timer kinds, in the order timers due at one instant fire (docs/rules.md, "One instant").
MAX_TTL, INTERACTIVE, OPEN_TIMEOUT, RESERVATION_START, RESERVATION_END = range(5)
TIMER_NAMES = (
    "max_ttl",
    "interactive_timeout",
    "open_timeout",
    "reservation_start",
    "reservation_end",
)


class Policy:
    """Scheduling state of every backend, and the rules that move it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backends: dict[str, Backend] = {}
        self.reservations: dict[str, Reservation] = {}
        self.sessions: dict[str, Session] = {}
        self.jobs: dict[str, Job] = {}
        self.shares: dict[str, float] = {}
        self.usage = UsageLedger(settings.usage_window)
        self.allocations = Allocations(self.usage)
        self.now: int | None = None
        self.last_activity: int | None = None  # last job start/end or live timer fired
        self.job_seq = 0
        self.session_seq = 0
        self._order: list[Backend] = []  # backends by name: the order they pick in
        self._queues: dict[str, BackendQueues] = {}
        self._timers: list[tuple[int, int, int, int, object]] = []
        self._timer_tickets = count()  # keeps entries of equal rank comparable
        self._ends: list[tuple[int, str, int, Job]] = []
        self._bound: dict[str, list[Session]] = {}
        self._reservation_timers: dict[tuple[str, int], int] = {}  # live timer tickets
        self._out = Instant()  # what the current `run_instant` call did
        self._logging = True  # whether it keeps events

    # ----------------------------------------------------------------- set-up
    def add_backend(self, backend: Backend) -> None:
        self.backends[backend.name] = backend
        self._order = sorted(self.backends.values(), key=lambda b: b.name)
        self._queues[backend.name] = BackendQueues()

    def add_reservation(self, reservation: Reservation) -> None:
        if reservation.backend not in self.backends:
            raise ValueError(f"reservation {reservation.id}: unknown backend")
        self.reservations[reservation.id] = reservation
        if not reservation.started:
            self._push_timer(reservation.start, RESERVATION_START, reservation)
        elif not reservation.ended:
            self.backends[reservation.backend].reservation = reservation
        if not reservation.ended:
            self._push_timer(reservation.end, RESERVATION_END, reservation)

    def set_share(self, node: str, share: float) -> None:
        self.shares[node] = share

    def put_allocation(self, allocation: m.Allocation) -> None:
        """Set a node's allocation now (before time starts: counting every charge kept)."""
        self.allocations.put(allocation, self.now)

    def restore(
        self,
        sessions: Iterable[Session],
        jobs: Iterable[Job],
        holds: dict[str, tuple[str, int]] | None = None,
    ) -> None:
        """Index sessions and queued or running jobs loaded from storage."""
        for session in sessions:
            self.sessions[session.id] = session
            self.session_seq = max(self.session_seq, session.seq)
            if session.state == CLOSED:
                continue
            backend = self.backends[session.backend]
            if session.state == ACTIVE:
                backend.active_session = session
            if session.bound_reservation is not None:
                self._bound.setdefault(session.bound_reservation, []).append(session)
            self._arm_session_timers(session)
        for job in sorted(jobs, key=lambda j: j.key):
            self.jobs[job.id] = job
            self.job_seq = max(self.job_seq, job.seq)
            if job.status == QUEUED:
                self._enqueue(job)
            elif job.status == RUNNING:
                self.backends[job.backend].running = job
                self._schedule_end(job)
        for name, (session_id, since) in (holds or {}).items():
            backend = self.backends[name]
            backend.hold_session = self.sessions[session_id]
            backend.hold_since = since

    def _arm_session_timers(self, session: Session) -> None:
        if session.ttl_deadline is not None:
            self._push_timer(session.ttl_deadline, MAX_TTL, session)
        if session.interactive_deadline is not None:
            self._push_timer(session.interactive_deadline, INTERACTIVE, session)
        if session.open_deadline is not None:
            self._push_timer(session.open_deadline, OPEN_TIMEOUT, session)

    # ------------------------------------------------------------------- time
    def run_instant(self, t: int, actions: Sequence[m.Action] = (), *, log: bool = True) -> Instant:
        """Bring the state to instant `t`, apply `actions` there in order, and say what
        changed (everything due before `t` included).

        `log=False` leaves the events out of the answer (the starts and charges stay):
        for replays that only need the order of starts.
        """
        out = self._out = Instant()
        self._logging = log
        try:
            self._process_until(t)
            self.now = t
            self._finish_due(t)
            out.outcomes = [self._apply(action, t) for action in actions]
            self._settle(t)
        finally:
            self._out = Instant()
        return out

    def next_due(self) -> int | None:
        """The next instant at which a job ends or a live timer fires."""
        ends = self._ends
        while ends and not self._end_is_live(ends[0]):
            heappop(ends)
        timers = self._timers
        while timers and not self._timer_is_live(timers[0]):
            heappop(timers)
        due = [heap[0][0] for heap in (ends, timers) if heap]
        if self.allocations.items and self.now is not None:
            freed = self.allocations.next_change(self.now, self._waiting_below)
            if freed is not None:
                due.append(freed)
        return min(due) if due else None

    def _waiting_below(self, node: str) -> bool:
        """Whether a job waits for the fair-share lane below `node` on some backend."""
        return any(queues.count.get(node, 0) for queues in self._queues.values())

    def _process_until(self, t: int) -> None:
        ends, timers = self._ends, self._timers
        if not (
            (ends and ends[0][0] < t) or (timers and timers[0][0] < t) or self.allocations.items
        ):
            return  # nothing (not even a stale entry) is due before t
        while (due := self.next_due()) is not None and due < t:
            self.now = due
            self._finish_due(due)
            self._settle(due)

    def _settle(self, t: int) -> None:
        """Steps 3 and 4 of an instant, repeated with step 1 while more is due at `t`."""
        while True:
            self._fire_timers(t)
            self._pick(t)
            ends, timers = self._ends, self._timers
            if not ((ends and ends[0][0] <= t) or (timers and timers[0][0] <= t)):
                return
            self._finish_due(t)

    def _touch(self, t: int) -> None:
        if self.last_activity is None or t > self.last_activity:
            self.last_activity = t

    def _log(self, t: int, kind: str, subject: object, **detail: object) -> None:
        if self._logging:
            self._out.events.append(Event(t, kind, subject, detail))

    def _charge(self, instance: str, amount: int, end: int, source: Job | Session) -> None:
        if amount > 0:
            self.usage.charge(instance, amount, end)
            self._out.charges.append(Charge(end, instance, amount, source))

    # ---------------------------------------------------------------- actions
    def _apply(self, action: m.Action, t: int) -> Outcome:
        if isinstance(action, m.Submit):
            outcome = self._submit(action, t)
            if not outcome.accepted:  # logged in order: a replay refuses it at the same point
                if action.start_session:
                    self._log(
                        t, "session_refused", None, session=action.session, error=outcome.code
                    )
                self._log(
                    t,
                    "job_refused",
                    None,
                    job=action.job,
                    session=action.session,
                    error=outcome.code,
                )
            return outcome
        if isinstance(action, m.CreateSession):
            refusal = None
            if action.backend not in self.backends:
                refusal = m.UNKNOWN_BACKEND
            elif self.allocations.items and self.allocations.refuses(action.instance, t):
                refusal = m.ALLOCATION_EXHAUSTED
            if refusal is not None:
                self._log(t, "session_refused", None, session=action.session, error=refusal)
                return Outcome(False, refusal)
            session = self._new_session(
                action.session, action.backend, action.instance, t, action.mode, action.max_ttl
            )
            return Outcome(True, warnings=self._reservation_warnings(session, t))
        if isinstance(action, m.CancelJob):
            self._cancel_job(action.job, t)
        elif isinstance(action, m.FinishJob):
            job = self.jobs.get(action.job)
            if job is not None and job.status == RUNNING:
                self._end_job(job, t, action.status, action.error)
        elif isinstance(action, m.CloseSession):
            self._close_session(action.session, t)
        elif isinstance(action, m.CancelSession):
            cancelled = self.sessions.get(action.session)
            if cancelled is not None and cancelled.state != CLOSED:
                self._close(cancelled, t, m.CLOSED_CANCELLED, CANCELLED, m.SESSION_CANCELLED)
        elif isinstance(action, m.SetBackendStatus):
            self._set_backend_status(action.backend, action.status, t)
        elif isinstance(action, m.PutReservation):
            self._put_reservation(action, t)
        elif isinstance(action, m.RemoveReservation):
            self._remove_reservation(action.reservation, t)
        elif isinstance(action, m.SetShare):
            self._set_share(action, t)
        elif isinstance(action, m.PutBackend):
            self._put_backend(action, t)
        elif isinstance(action, m.PutAllocation):
            self._put_allocation(action, t)
        else:  # pragma: no cover - the Action union is closed
            raise TypeError(f"unknown action {action!r}")
        return m.ACCEPTED

    def _submit(self, a: m.Submit, t: int) -> Outcome:
        if a.backend not in self.backends:
            return Outcome(False, m.UNKNOWN_BACKEND)
        session = None
        if not a.start_session and a.session is not None:
            session = self.sessions.get(a.session)
            if session is None:
                return Outcome(False, m.UNKNOWN_SESSION)
            if session.backend != a.backend:
                return Outcome(False, m.BACKEND_MISMATCH)
            if session.instance != a.instance:
                return Outcome(False, m.INSTANCE_MISMATCH)
            if session.state == CLOSED or not session.accepting_jobs:
                return Outcome(False, m.SESSION_CLOSED)
        if self.allocations.items and self.allocations.refuses(a.instance, t):
            return Outcome(False, m.ALLOCATION_EXHAUSTED)
        if a.job in self.jobs:
            raise ValueError(f"job {a.job!r} exists already")
        warnings: tuple[ReservationWarning, ...] = ()
        if a.start_session:
            if a.session is None:
                raise ValueError("start_session needs a session id")
            session = self._new_session(a.session, a.backend, a.instance, t, a.mode, None)
        self.job_seq += 1
        job = Job(
            id=a.job,
            instance=a.instance,
            backend=a.backend,
            submitted_at=t,
            seq=self.job_seq,
            duration=a.duration,
            max_execution_time=a.max_execution_time,
            session=session,
        )
        job.expected = a.duration if a.expected is None else a.expected
        self.jobs[job.id] = job
        self._log(t, "job_submitted", job)
        if session is not None:
            if session.max_ttl is None:  # the first job accepted fixes the max TTL
                session.max_ttl = timers.max_ttl(self.settings, a.max_execution_time)
                self._log(t, "session_max_ttl", session, max_ttl=session.max_ttl)
                if a.start_session:
                    warnings = self._reservation_warnings(session, t)
            if session.interactive_deadline is not None:  # submitted in time: stays active
                session.interactive_deadline = None
                self._log(t, "interactive_timeout_cancelled", session)
        self._enqueue(job)
        return Outcome(True, warnings=warnings)

    def _new_session(
        self, sid: str, backend: str, instance: str, t: int, mode: str, max_ttl: int | None
    ) -> Session:
        if sid in self.sessions:
            raise ValueError(f"session {sid!r} exists already")
        settings = self.settings
        self.session_seq += 1
        deadline = timers.open_deadline(settings, t)
        session = Session(
            id=sid,
            backend=backend,
            instance=instance,
            created_at=t,
            seq=self.session_seq,
            interactive_ttl=timers.interactive_ttl(settings, mode),
            mode=mode,
            max_ttl=timers.capped_max_ttl(settings, max_ttl),
            open_deadline=deadline,
        )
        session.history.append((t, OPEN))
        self.sessions[sid] = session
        self._push_timer(deadline, OPEN_TIMEOUT, session)
        self._log(t, "session_created", session)
        return session

    def _reservation_warnings(self, session: Session, t: int) -> tuple[ReservationWarning, ...]:
        ttl = session.max_ttl
        return reservation_warnings(
            self.reservations.values(),
            backend=session.backend,
            instance=session.instance,
            at=t,
            max_ttl=self.settings.system_max_ttl if ttl is None else ttl,
        )

    def _cancel_job(self, job_id: str, t: int) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            return
        if job.status == RUNNING:
            self._end_job(job, t, CANCELLED, None)
        elif job.status == QUEUED:
            self._drop_queued(job, t, CANCELLED, None)
            session = job.session
            if session is not None and session.state != CLOSED:
                self._session_idle(session, t)

    def _close_session(self, session_id: str, t: int) -> None:
        session = self.sessions.get(session_id)
        if session is None or session.state == CLOSED or not session.accepting_jobs:
            return
        session.accepting_jobs = False
        self._log(t, "session_closing", session)
        self._session_idle(session, t)

    def _set_backend_status(self, name: str, status: str, t: int) -> None:
        backend = self.backends.get(name)
        if backend is None or backend.status == status:
            return
        backend.status = status
        self._log(t, "backend_status", backend, status=status)
        self._update_hold(backend, t)

    # ------------------------------------------------------- operator changes
    def _put_reservation(self, a: m.PutReservation, t: int) -> None:
        """Add a window, or move the end (and the start, before it opened) of a known one.

        A window whose start has passed when it is added or moved opens at `t`; one
        whose end has passed closes at `t` (its timer fires in step 3 of this instant).
        """
        if a.backend not in self.backends:
            return
        current = self.reservations.get(a.id)
        if current is not None and (current.backend != a.backend or current.instance != a.instance):
            self._remove_reservation(a.id, t)
            current = None
        before = None
        if current is None:
            current = Reservation(
                id=a.id, backend=a.backend, instance=a.instance, start=a.start, end=a.end
            )
            self.reservations[a.id] = current
        elif current.ended:
            return  # the past stays as it was
        else:
            before = {"start": current.start, "end": current.end, "exclusive": current.exclusive}
        if not current.started:
            current.start = a.start
            self._push_timer(max(a.start, t), RESERVATION_START, current)
        current.end = a.end
        self._push_timer(max(a.end, t), RESERVATION_END, current)
        if current.exclusive != a.exclusive:
            current.exclusive = a.exclusive
            if current.started:
                self._update_hold(self.backends[a.backend], t)
        self._log(t, "reservation_changed", current, **window_detail(current), before=before)

    def _remove_reservation(self, reservation_id: str, t: int) -> None:
        """Delete a reservation: an open window closes at once, its bound sessions stay open."""
        reservation = self.reservations.pop(reservation_id, None)
        if reservation is None:
            return
        reservation.removed = True
        for session in self._bound.pop(reservation_id, []):
            session.bound_reservation = None
        backend = self.backends[reservation.backend]
        if backend.reservation is reservation:
            backend.reservation = None
            self._update_hold(backend, t)
        self._log(t, "reservation_removed", reservation, **window_detail(reservation))

    def _put_backend(self, a: m.PutBackend, t: int) -> None:
        backend = self.backends.get(a.name)
        if backend is None:
            self.add_backend(Backend(name=a.name, status=a.status, max_runtime=a.max_runtime))
            self._log(t, "backend_added", self.backends[a.name])
        elif backend.max_runtime != a.max_runtime:
            before = backend.max_runtime
            backend.max_runtime = a.max_runtime  # jobs started before keep their limit
            self._log(t, "backend_changed", backend, max_runtime=a.max_runtime, before=before)

    def _set_share(self, a: m.SetShare, t: int) -> None:
        before = self.shares.get(a.node, 1)
        if a.share == before:
            return
        self.shares[a.node] = a.share
        self._log(t, "share_changed", None, node=a.node, share=a.share, before=before)

    def _put_allocation(self, a: m.PutAllocation, t: int) -> None:
        """Set or remove a node's allocation; the backends pick in step 4 of this instant."""
        allocation = a.allocation()
        before = self.allocations.get(a.node)
        if allocation is None:
            if before is None:
                return
            self.allocations.remove(a.node)
        else:
            self.allocations.put(allocation, t)
        self._log(
            t,
            "allocation_changed",
            None,
            **allocation_detail(a.node, allocation),
            before=None if before is None else allocation_detail(a.node, before),
        )

    def forget_charges(self) -> None:
        """Drop the charges kept beyond the usage window that no current fixed allocation
        period counts, so memory follows the window (a long-lived policy calls this).

        An allocation put later whose period begins before `usage.forgotten` would
        miss charges: its caller loads them again (`usage.load`) first.
        """
        if self.now is None:
            return
        keep = self.now - self.settings.usage_window + 1
        for allocation in self.allocations.all():
            start = None if allocation.period is None else allocation.period.containing(self.now)
            if start is not None and start < keep:
                keep = start
        self.usage.forget_before(keep)

    def forget(self, jobs: Iterable[Job], sessions: Iterable[Session]) -> None:
        """Forget those of `jobs` in a final state and those of `sessions` closed with
        nothing left running.

        The live leader calls this with what a step changed, once it is saved, so its
        memory follows the queue, not the history.
        """
        for job in jobs:
            if job.status in FINAL and self.jobs.get(job.id) is job:
                del self.jobs[job.id]
        for session in sessions:
            if session.state != CLOSED or self.sessions.get(session.id) is not session:
                continue
            running = self.backends[session.backend].running
            if running is None or running.session is not session:
                del self.sessions[session.id]

    # ----------------------------------------------------------------- queues
    def queues(self, backend: str) -> BackendQueues:
        """The queue indices of `backend` (read-only for callers)."""
        return self._queues[backend]

    def _enqueue(self, job: Job) -> None:
        queues = self._queues[job.backend]
        queues.queued += 1
        project = queues.project(job.instance)
        project.added += 1
        session = job.session
        if session is None:
            project.loose.append(job)
            queues.adjust(job.instance, 1)
            return
        session.queue.append(job)
        session.queued_count += 1
        if session.state in WAITING_STATES:
            queues.adjust(job.instance, 1)
            if session.queued_count == 1:
                project.offer(session)

    def _dequeue(self, job: Job) -> None:
        """Take a job out of the queue indices (its status changes right after)."""
        queues = self._queues[job.backend]
        queues.queued -= 1
        session = job.session
        if session is None:
            queues.adjust(job.instance, -1)
            return
        session.queued_count -= 1
        if session.queued_count == 0:
            session.queue.clear()
        if session.state in WAITING_STATES:
            queues.adjust(job.instance, -1)
            if session.queued_count and session.head() is job:
                session.queue.popleft()
                queues.project(job.instance).offer(session)

    def _drop_queued(self, job: Job, t: int, status: str, error: str | None) -> None:
        self._dequeue(job)
        job.status = status
        job.error = error
        job.ended_at = t
        self._log(t, "job_ended", job, status=status, error=error)

    # ------------------------------------------------------------------ lanes
    def _pick(self, t: int) -> None:
        for backend in self._order:
            if backend.running is None and backend.status == ONLINE:
                job, lane = self._choose(backend, t)
                if job is not None:
                    self._start(backend, job, lane, t)

    def _choose(self, backend: Backend, t: int) -> tuple[Job | None, str]:
        queues = self._queues[backend.name]
        active = backend.active_session
        reservation = backend.reservation
        if reservation is not None:
            if (
                active is not None
                and active.instance == reservation.instance
                and active.queued_count
            ):
                return active.head(), m.RESERVATION
            # Nothing of the instance is queued in the active session: the oldest of the rest.
            project = queues.projects.get(reservation.instance)
            job = project.oldest() if project is not None else None
            if job is not None:
                return job, m.RESERVATION
            if reservation.exclusive:
                return None, m.RESERVATION
        if active is not None:
            if active.queued_count:
                return active.head(), m.SESSION
            if active.accepting_jobs:
                return None, m.SESSION  # the session holds the backend
        self.usage.expire(t)
        if self.allocations.items:
            job = gated_fair_share(
                queues,
                self.allocations,
                shares=self.shares,
                totals=self.usage.totals,
                t=t,
                fit_time=lambda job: self.fit_time(job, backend),
                fit_key=backend.max_runtime,
            )
            return job, m.FAIR_SHARE
        return self._fair_share(queues), m.FAIR_SHARE

    def _fair_share(self, queues: BackendQueues) -> Job | None:
        """Descend hub, group, project by lowest usage/share; ties to the oldest job."""
        children = queues.children
        totals = self.usage.totals
        shares = self.shares
        node = ROOT
        for _level in range(3):
            kids = children.get(node)
            if not kids:
                return None
            if len(kids) == 1:
                (node,) = kids
                continue
            best = inf
            tied: list[str] = []
            for kid in kids:
                share = shares.get(kid, 1)
                ratio = totals.get(kid, 0) / share if share > 0 else inf
                if ratio < best or not tied:
                    best, tied = ratio, [kid]
                elif ratio == best:
                    tied.append(kid)
            node = tied[0] if len(tied) == 1 else min(tied, key=queues.oldest_key)
        return queues.projects[node].oldest()

    # ------------------------------------------------------------------- jobs
    def runtime_limit(self, job: Job, backend: Backend) -> int:
        """`min(max_execution_time, backend limit)` of a job starting on `backend` now."""
        limit = backend.max_runtime
        if limit is None:
            limit = self.settings.backend_max_runtime
        if job.max_execution_time is not None and job.max_execution_time < limit:
            limit = job.max_execution_time
        return limit

    def fit_time(self, job: Job, backend: Backend | None = None) -> int:
        """The time a queued job can run: its duration (known, else modeled) capped at its
        runtime limit; with neither, the limit (what `safe` allocations count)."""
        limit = self.runtime_limit(job, backend or self.backends[job.backend])
        duration = job.duration if job.duration is not None else job.expected
        return limit if duration is None or duration > limit else duration

    def allocation_block(self, job: Job, t: int) -> dict[str, Any] | None:
        """Why allocations keep a queued job out of the fair-share lane at `t` (the data
        of the reason `allocation_exhausted`), or None."""
        if not self.allocations:
            return None
        return self.allocations.blocked(job.instance, self.fit_time(job), t)

    def _start(self, backend: Backend, job: Job, lane: str, t: int) -> None:
        self._dequeue(job)
        job.status = RUNNING
        job.lane = lane
        job.started_at = t
        job.limit = self.runtime_limit(job, backend)
        self._schedule_end(job)
        backend.running = job
        self._out.started.append(job)
        self._touch(t)
        self._log(t, "job_started", job, lane=lane)
        session = job.session
        if session is not None and session.state != ACTIVE:
            self._activate(backend, session, t)
        self._update_hold(backend, t)

    def _schedule_end(self, job: Job) -> None:
        assert job.started_at is not None and job.limit is not None
        run = job.limit if job.duration is None or job.duration > job.limit else job.duration
        job.end_due = job.started_at + run
        heappush(self._ends, (job.end_due, job.backend, job.seq, job))

    def reschedule_end(self, job: Job) -> None:
        """Recompute a running job's end after its duration became known."""
        self._schedule_end(job)

    def _end_is_live(self, entry: tuple[int, str, int, Job]) -> bool:
        job = entry[3]
        return job.status == RUNNING and job.end_due == entry[0]

    def _finish_due(self, t: int) -> None:
        """Step 1: jobs whose run ends at `t` finish (or fail at their runtime limit)."""
        ends = self._ends
        while ends and ends[0][0] <= t:
            entry = heappop(ends)
            if not self._end_is_live(entry):
                continue
            job = entry[3]
            assert job.limit is not None
            if job.duration is not None and job.duration <= job.limit:
                self._end_job(job, entry[0], COMPLETED, None)
            else:
                self._end_job(job, entry[0], FAILED, m.MAX_EXECUTION_TIME_EXCEEDED)

    def _end_job(self, job: Job, t: int, status: str, error: str | None) -> None:
        backend = self.backends[job.backend]
        if backend.running is job:
            backend.running = None
        assert job.started_at is not None
        job.status = status
        job.error = error
        job.ended_at = t
        job.end_due = None
        self._charge(job.instance, t - job.started_at, t, job)
        self._touch(t)
        self._log(t, "job_ended", job, status=status, error=error)
        session = job.session
        if session is not None and session.state != CLOSED:
            self._session_idle(session, t)
        self._update_hold(backend, t)

    # --------------------------------------------------------------- sessions
    def _session_idle(self, session: Session, t: int) -> None:
        """A session job ended or was cancelled: close a closing session, or start
        the interactive timeout when nothing of the session is left."""
        if session.queued_count:
            return
        backend = self.backends[session.backend]
        if backend.running is not None and backend.running.session is session:
            return
        if not session.accepting_jobs:
            self._close(session, t, m.CLOSED_BY_USER)
        elif session.state == ACTIVE and session.interactive_deadline is None:
            session.interactive_deadline = t + session.interactive_ttl
            self._push_timer(session.interactive_deadline, INTERACTIVE, session)
            self._log(t, "interactive_timeout_started", session)

    def _set_state(self, session: Session, state: str, t: int) -> None:
        session.state = state
        session.history.append((t, state))
        self._log(t, "session_state", session, state=state)

    def _activate(self, backend: Backend, session: Session, t: int) -> None:
        other = backend.active_session
        if other is not None and other is not session:
            self._deactivate(backend, other, t)
        self._queues[backend.name].adjust(session.instance, -session.queued_count)
        if session.state == OPEN:
            assert session.max_ttl is not None
            session.open_deadline = None
            session.ttl_deadline = t + session.max_ttl
            self._push_timer(session.ttl_deadline, MAX_TTL, session)
        self._set_state(session, ACTIVE, t)
        backend.active_session = session
        reservation = backend.reservation
        if reservation is not None and reservation.instance == session.instance:
            session.bound_reservation = reservation.id
            self._bound.setdefault(reservation.id, []).append(session)
            self._log(t, "session_bound", session, reservation=reservation.id)

    def _deactivate(self, backend: Backend, session: Session, t: int) -> None:
        session.interactive_deadline = None
        self._set_state(session, m.INACTIVE, t)
        backend.active_session = None
        if session.queued_count:
            queues = self._queues[backend.name]
            queues.adjust(session.instance, session.queued_count)
            queues.project(session.instance).offer(session)

    def _close(
        self,
        session: Session,
        t: int,
        reason: str,
        job_status: str = FAILED,
        job_error: str | None = None,
    ) -> None:
        """Close a session for good; its queued jobs end with `job_status`."""
        if session.queued_count:
            for job in list(session.queue):
                if job.status == QUEUED:
                    self._drop_queued(job, t, job_status, job_error)
        backend = self.backends[session.backend]
        was_active = backend.active_session is session
        if was_active:
            backend.active_session = None
        session.ttl_deadline = session.interactive_deadline = session.open_deadline = None
        session.closed_reason = reason
        self._set_state(session, CLOSED, t)
        if was_active:
            self._update_hold(backend, t)

    def _update_hold(self, backend: Backend, t: int) -> None:
        """Track the span an active session holds an idle online backend, and charge it."""
        session = backend.active_session
        if session is not None and (
            backend.running is not None
            or backend.status != ONLINE
            or (
                backend.reservation is not None
                and backend.reservation.exclusive
                and backend.reservation.instance != session.instance
            )
        ):
            session = None
        held = backend.hold_session
        if session is held:
            return
        if held is not None:
            assert backend.hold_since is not None
            self._charge(held.instance, t - backend.hold_since, t, held)
            self._log(t, "hold_ended", backend, session=held.id, since=backend.hold_since)
        backend.hold_session = session
        backend.hold_since = t if session is not None else None
        if session is not None:
            self._log(t, "hold_started", backend, session=session.id)

    # ----------------------------------------------------------------- timers
    def _push_timer(self, due: int, kind: int, subject: object) -> None:
        seq = subject.seq if isinstance(subject, Session) else 0
        ticket = next(self._timer_tickets)
        if isinstance(subject, Reservation):  # only its newest timer of each kind is live
            self._reservation_timers[subject.id, kind] = ticket
        heappush(self._timers, (due, kind, seq, ticket, subject))

    def _timer_is_live(self, entry: tuple[int, int, int, int, object]) -> bool:
        due, kind, _, ticket, subject = entry
        if kind == MAX_TTL:
            assert isinstance(subject, Session)
            return subject.state != CLOSED and subject.ttl_deadline == due
        if kind == INTERACTIVE:
            assert isinstance(subject, Session)
            return subject.state == ACTIVE and subject.interactive_deadline == due
        if kind == OPEN_TIMEOUT:
            assert isinstance(subject, Session)
            return subject.state == OPEN and subject.open_deadline == due
        assert isinstance(subject, Reservation)
        if subject.removed or self._reservation_timers.get((subject.id, kind)) != ticket:
            return False
        if kind == RESERVATION_START:
            return not subject.started
        return not subject.ended

    def _fire_timers(self, t: int) -> None:
        """Step 3: fire the live timers due at `t`, in their fixed order."""
        timers = self._timers
        while timers and timers[0][0] <= t:
            entry = heappop(timers)
            if not self._timer_is_live(entry):
                continue
            _, kind, _, _, subject = entry
            self._touch(t)
            self._log(t, "timer_fired", subject, timer=TIMER_NAMES[kind])
            if isinstance(subject, Session):
                self._fire_session_timer(kind, subject, t)
            else:
                assert isinstance(subject, Reservation)
                self._fire_reservation_timer(kind, subject, t)

    def _fire_session_timer(self, kind: int, session: Session, t: int) -> None:
        if kind == MAX_TTL:
            self._close(session, t, m.CLOSED_EXPIRED, FAILED, m.SESSION_EXPIRED)
        elif kind == INTERACTIVE:
            backend = self.backends[session.backend]
            self._deactivate(backend, session, t)
            self._update_hold(backend, t)
        else:
            session.open_deadline = None
            if session.queued_count == 0:
                self._close(session, t, m.CLOSED_OPEN_TIMEOUT)

    def _fire_reservation_timer(self, kind: int, reservation: Reservation, t: int) -> None:
        backend = self.backends[reservation.backend]
        if kind == RESERVATION_START:
            reservation.started = True
            backend.reservation = reservation
        else:
            reservation.ended = True
            if backend.reservation is reservation:
                backend.reservation = None
            for session in self._bound.pop(reservation.id, []):
                if session.state != CLOSED:
                    self._close(session, t, m.CLOSED_RESERVATION_ENDED, FAILED, m.RESERVATION_ENDED)
        self._update_hold(backend, t)


def reservation_warnings(
    reservations: Iterable[Reservation], *, backend: str, instance: str, at: int, max_ttl: int
) -> tuple[ReservationWarning, ...]:
    """The windows of `instance` on `backend` that may bind a session created at `at`:
    in their window now, or opening before `at + max_ttl` (docs/rules.md)."""
    return tuple(
        ReservationWarning(r.id, r.start, r.end, r.start <= at)
        for r in reservations
        if r.backend == backend and r.instance == instance and at < r.end and r.start < at + max_ttl
    )


def window_detail(reservation: Reservation) -> dict[str, Any]:
    """A reservation as the event log keeps it (it outlives a deleted one)."""
    return {
        "id": reservation.id,
        "backend": reservation.backend,
        "instance": reservation.instance,
        "start": reservation.start,
        "end": reservation.end,
        "exclusive": reservation.exclusive,
    }


def allocation_detail(node: str, allocation: m.Allocation | None) -> dict[str, Any]:
    """A node's allocation (None: removed) as the event log keeps it."""
    if allocation is None:
        return {"node": node, "seconds": None, "enforce": None, "period": None}
    period = allocation.period
    return {
        "node": node,
        "seconds": allocation.amount,
        "enforce": allocation.enforce,
        "period": None if period is None else [period.start, period.length],
    }
