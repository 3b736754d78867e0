"""Reference oracle: a slow, literal simulator of the rules of docs/rules.md.

Written only from docs/rules.md and the scenario format of docs/simulate.md, never
from the project's scheduler code, so that the two can be differential-tested. It rescans the whole
state at every decision, keeps no incremental index and keeps time as exact
`fractions.Fraction` values of the JSON numbers.

Readings of the spec where the text leaves room (each is a decision, listed so a
divergence can be traced to one of them):

R1  Hold. "its backend was online, ran no job, and was not inside another
    instance's exclusive reservation": the subject of all three is the backend.
    A session holds while it is `active`, not closing, its backend is online and
    runs no job at all (not even another instance's reservation-lane job), and
    no exclusive reservation of a different instance is in its window on that
    backend. A hold is a maximal interval of that condition; it is charged when
    the condition stops (job start, pause, exclusive window opening, interactive
    timeout, deactivation, close), so one idle stretch can be charged in pieces.
R2  A charge made at instant t counts for every decision taken later at t
    (now - end = 0 < window), e.g. a hold ended by backend sim_a's pick changes
    the fair-share pick of sim_b at the same instant.
R3  A session job submitted while the interactive timeout is pending cancels
    that timer (the session stays active). A new timer starts only when a
    running session job reaches a final state, or a queued session job is
    cancelled, and afterwards the session has nothing queued or running.
R4  The interactive timer only exists for an `active` session; it is dropped
    when the session becomes inactive for any reason or closes.
R5  Requested max time: the session's `max_ttl` if created with one, else the
    `max_execution_time` of the first job accepted into it; if that first job
    has none, the system limit (later jobs do not supply one).
R6  A session bound to a reservation window stays bound after it turns
    inactive; when the window ends it closes whatever its state (not closed).
R7  The open timeout is a live timer only while the session is `open`: it is
    cancelled (not counted for end_time) when the session activates or closes.
    If at the deadline the session is still open but has a job queued, the timer
    fires (counts for end_time) without effect and never fires again.
R8  A closing session (close_session) closes as soon as it has nothing queued
    or running, also when it is still `open` and its last queued job is
    cancelled. Cancel_session applies to a closing session too.
R9  Several timers of one kind due at one instant fire in session-name order
    (reservation timers in scenario order); none of this changes the outcome.
R10 In the reservation lane, "its active session" is the reserving instance's
    session that is active on this backend; its jobs come first, then every
    other queued job of that instance on the backend (non-session jobs and jobs
    of its open or inactive sessions) by submission time, then submission order.
R11 Fair-share usage of a tree node is the sum over instances below it of
    prior usage (ended at 0) and charges whose end is within the window; a
    running job or an unfinished hold does not count yet.
R12 `usage` in the trace lists every instance named anywhere in the scenario:
    submits (refused ones included), create_session, reservations, prior usage
    and `shares` keys that are full hub/group/project paths.
R13 A refused submission keeps the backend and session it named; a refused
    start_session submission creates no session.
R14 With no events, no reservations and nothing else happening, end_time is 0.
R15 Step 2 runs once per instant, in the first round; later rounds at the same
    instant run steps 1, 3 and 4 while a job ends at t or a live timer is due
    at t.
R16 A cancelled running job is charged its run time so far; a job failing at
    its runtime limit is charged the limit.

Section 2.8 (allocations):

R17 Consumed at t, rolling: the node's usage of R11 at t (prior usage is a
    charge ended at 0). Fixed `{start: T, length: L}`: the charges below the
    node (prior usage included, ended at 0) whose end lies in
    [T + kL, T + (k+1)L) for the k >= 0 with t in it; before T, nothing.
R18 Every allocated node that is exhausted (consumed >= seconds) keeps the
    queued jobs below it out of the fair-share lane, whatever its mode (each
    mode is "as queue, and ..."). A `safe` node also keeps out a job whose
    time does not fit what is left (consumed + time > seconds); a `refuse`
    node also refuses. Nodes of other modes never ask for the fit.
R19 A job's time (safe) is min(duration, runtime limit), the runtime limit
    being min(max_execution_time, backend_max_runtime); read when it is
    checked.
R20 The fair-share lane first drops the jobs allocations keep out, then
    descends as 2.1 step 3 over the rest: a child is a candidate only if an
    eligible job lies below it, ties go to the oldest eligible job, and inside
    the project the oldest eligible job starts, even if an older job of the
    same session does not fit (picking it activates the session, whose lane is
    exempt from then on).
R21 Exempt: the reservation lane, and the session lane of an active session
    (also its hold), whatever the allocations say.
R22 Refusal (`allocation_exhausted`) of a submission (start_session and joins
    included) or a create_session comes after the refusals of 2.2; a refused
    create_session or start_session creates no session. Consumed is read at
    the submission's instant, after step 1 (ends at that instant count).
R23 Allocation timers: for every queued job that allocations keep out of the
    fair-share lane (no session, or an open or inactive one), the first instant
    after now at which it would be eligible with only the charges made so far
    (candidates: a charge below one of its nodes leaving the rolling window,
    the next fixed period's start). The earliest such instant is processed as
    an instant (steps 1-4; its step 4 is the pick that matters) but marks
    nothing for end_time by itself, and does not make the instant's steps
    repeat.
R24 put_allocation applies in step 2 in file order; `seconds: null` removes
    the node's allocation; a new one replaces the old (its consumption is
    recomputed from all charges, whatever the old one counted).
R25 `usage` in the trace also lists the full hub/group/project paths named by
    allocations and put_allocation events (as R12 does for shares).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

DEFAULTS = {
    "interactive_ttl": 60,
    "system_max_ttl": 28800,
    "open_timeout": 1800,
    "usage_window": 2419200,
    "backend_max_runtime": 10800,
}

QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED, REJECTED = (
    "Queued",
    "Running",
    "Completed",
    "Failed",
    "Cancelled",
    "Rejected",
)
OPEN, ACTIVE, INACTIVE, CLOSED = "open", "active", "inactive", "closed"


def _frac(value: Any) -> Fraction:
    return Fraction(value)


def _below(instance: str, node: str) -> bool:
    return instance == node or instance.startswith(node + "/")


def _out(value: Fraction | None) -> int | float | None:
    if value is None:
        return None
    if value.denominator == 1:
        return int(value)
    return float(value)


@dataclass
class _Job:
    name: str
    instance: str
    backend: str
    session: str | None
    duration: Fraction
    max_execution_time: Fraction | None
    submitted_at: Fraction
    seq: int
    status: str = QUEUED
    lane: str | None = None
    started_at: Fraction | None = None
    ended_at: Fraction | None = None
    end_due: Fraction | None = None
    error: str | None = None


@dataclass
class _Session:
    name: str
    backend: str
    instance: str
    created_at: Fraction
    requested_ttl: Fraction | None
    has_requested: bool
    state: str = OPEN
    closing: bool = False
    closed_reason: str | None = None
    history: list[tuple[Fraction, str]] = field(default_factory=list)
    first_job_seen: bool = False
    clock_start: Fraction | None = None
    interactive_due: Fraction | None = None
    open_fired: bool = False
    bound: str | None = None
    hold_start: Fraction | None = None


@dataclass
class _Reservation:
    id: str
    backend: str
    instance: str
    start: Fraction
    end: Fraction
    exclusive: bool
    start_fired: bool = False
    end_fired: bool = False


class _Reference:
    def __init__(self, scenario: dict[str, Any]) -> None:
        settings = dict(DEFAULTS)
        settings.update(scenario.get("settings") or {})
        self.settings = {k: _frac(v) for k, v in settings.items()}
        self.backends = {b["name"]: b.get("status", "online") for b in scenario["backends"]}
        self.running: dict[str, str | None] = {name: None for name in self.backends}
        self.shares = {k: _frac(v) for k, v in (scenario.get("shares") or {}).items()}
        self.prior = {k: _frac(v) for k, v in (scenario.get("usage") or {}).items()}
        self.reservations = [
            _Reservation(
                id=r["id"],
                backend=r["backend"],
                instance=r["instance"],
                start=_frac(r["start"]),
                end=_frac(r["end"]),
                exclusive=bool(r.get("exclusive", False)),
            )
            for r in scenario.get("reservations") or []
        ]
        self.allocations: dict[str, dict[str, Any]] = {}
        for body in scenario.get("allocations") or []:
            self._put_allocation(body)
        indexed = list(enumerate(scenario.get("events") or []))
        indexed.sort(key=lambda pair: (_frac(pair[1]["at"]), pair[0]))
        self.events = [event for _, event in indexed]
        self.next_event = 0
        self.jobs: dict[str, _Job] = {}
        self.sessions: dict[str, _Session] = {}
        self.starts: dict[str, list[tuple[Fraction, str]]] = {name: [] for name in self.backends}
        self.charges: list[tuple[str, Fraction, Fraction]] = []  # instance, amount, end
        self.now = Fraction(0)
        self.end_time = Fraction(0)
        self.instances = self._named_instances(scenario)

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _named_instances(scenario: dict[str, Any]) -> set[str]:
        names = set((scenario.get("usage") or {}).keys())
        names |= {k for k in (scenario.get("shares") or {}) if k.count("/") == 2}
        names |= {r["instance"] for r in scenario.get("reservations") or []}
        names |= {a["instance"] for a in scenario.get("allocations") or []}
        for event in scenario.get("events") or []:
            for kind in ("submit", "create_session", "put_allocation"):
                if kind in event:
                    names.add(event[kind]["instance"])
        return {name for name in names if name.count("/") == 2}

    def _mark(self) -> None:
        self.end_time = max(self.end_time, self.now)

    def _set_state(self, session: _Session, state: str) -> None:
        session.state = state
        session.history.append((self.now, state))

    def _jobs_of(self, session: _Session, *statuses: str) -> list[_Job]:
        return [j for j in self.jobs.values() if j.session == session.name and j.status in statuses]

    def _charge(self, instance: str, amount: Fraction) -> None:
        self.charges.append((instance, amount, self.now))

    def _usage(self, node: str, at: Fraction | None = None) -> Fraction:
        window = self.settings["usage_window"]
        now = self.now if at is None else at

        def below(instance: str) -> bool:
            return instance == node or instance.startswith(node + "/")

        total = sum((v for k, v in self.prior.items() if below(k) and now < window), Fraction(0))
        total += sum(
            (a for inst, a, end in self.charges if below(inst) and now - end < window),
            Fraction(0),
        )
        return total

    def _share(self, node: str) -> Fraction:
        return self.shares.get(node, Fraction(1))

    # ------------------------------------------------------------ allocations

    def _put_allocation(self, body: dict[str, Any]) -> None:
        node = body["instance"]
        if body.get("seconds") is None:
            self.allocations.pop(node, None)
            return
        period = body.get("period")
        self.allocations[node] = {
            "seconds": _frac(body["seconds"]),
            "enforce": body.get("enforce", "queue"),
            "period": None if period is None else (_frac(period["start"]), _frac(period["length"])),
        }

    @staticmethod
    def _path(instance: str) -> list[str]:
        parts = instance.split("/")
        return ["/".join(parts[:depth]) for depth in (1, 2, 3)]

    def _period_start(self, period: tuple[Fraction, Fraction], at: Fraction) -> Fraction | None:
        start, length = period
        if at < start:
            return None
        return start + ((at - start) // length) * length

    def _consumed(self, node: str, at: Fraction) -> Fraction:
        period = self.allocations[node]["period"]
        if period is None:
            return self._usage(node, at)
        begin = self._period_start(period, at)
        if begin is None:
            return Fraction(0)
        end = begin + period[1]
        total = sum(
            (v for k, v in self.prior.items() if _below(k, node) and begin <= 0 < end), Fraction(0)
        )
        total += sum(
            (a for inst, a, e in self.charges if _below(inst, node) and begin <= e < end),
            Fraction(0),
        )
        return total

    def _job_time(self, job: _Job) -> Fraction:
        return min(job.duration, self._limit(job))

    def _allowed(self, job: _Job, at: Fraction) -> bool:
        """Whether allocations let `job` be eligible in the fair-share lane at `at`."""
        for node in self._path(job.instance):
            allocation = self.allocations.get(node)
            if allocation is None:
                continue
            consumed = self._consumed(node, at)
            if consumed >= allocation["seconds"]:
                return False
            if (
                allocation["enforce"] == "safe"
                and consumed + self._job_time(job) > allocation["seconds"]
            ):
                return False
        return True

    def _refused_by_allocation(self, instance: str) -> bool:
        return any(
            (a := self.allocations.get(node)) is not None
            and a["enforce"] == "refuse"
            and self._consumed(node, self.now) >= a["seconds"]
            for node in self._path(instance)
        )

    def _waits_for_fair_share(self, job: _Job) -> bool:
        return job.status == QUEUED and (
            job.session is None or self.sessions[job.session].state in (OPEN, INACTIVE)
        )

    def _allocation_instant(self) -> Fraction | None:
        """R23: the first instant after now at which a job kept out becomes eligible."""
        if not self.allocations:
            return None
        window = self.settings["usage_window"]
        best: Fraction | None = None
        for job in self.jobs.values():
            if not self._waits_for_fair_share(job) or self._allowed(job, self.now):
                continue
            candidates: set[Fraction] = set()
            for node in self._path(job.instance):
                allocation = self.allocations.get(node)
                if allocation is None:
                    continue
                period = allocation["period"]
                if period is None:
                    ends = [Fraction(0) for k in self.prior if _below(k, node)]
                    ends += [e for inst, _, e in self.charges if _below(inst, node)]
                    candidates |= {e + window for e in ends if e + window > self.now}
                else:
                    begin = self._period_start(period, self.now)
                    candidates.add(period[0] if begin is None else begin + period[1])
            for at in sorted(candidates):
                if self._allowed(job, at):
                    if best is None or at < best:
                        best = at
                    break
        return best

    def _window(self, backend: str) -> _Reservation | None:
        for r in self.reservations:
            if r.backend == backend and r.start <= self.now < r.end:
                return r
        return None

    def _active_session(self, backend: str) -> _Session | None:
        active = [s for s in self.sessions.values() if s.backend == backend and s.state == ACTIVE]
        assert len(active) <= 1, "two active sessions on one backend"
        return active[0] if active else None

    def _max_ttl(self, session: _Session) -> Fraction:
        system = self.settings["system_max_ttl"]
        if session.requested_ttl is None:
            return system
        return min(system, session.requested_ttl)

    # ------------------------------------------------------------------ holds

    def _holding(self, session: _Session) -> bool:
        if session.state != ACTIVE or session.closing:
            return False
        backend = session.backend
        if self.backends[backend] != "online" or self.running[backend] is not None:
            return False
        window = self._window(backend)
        return not (window and window.exclusive and window.instance != session.instance)

    def _sync_holds(self) -> None:
        for session in self.sessions.values():
            holding = self._holding(session)
            if session.hold_start is not None and not holding:
                self._charge(session.instance, self.now - session.hold_start)
                session.hold_start = None
            elif session.hold_start is None and holding:
                session.hold_start = self.now

    # --------------------------------------------------------------- sessions

    def _close(self, session: _Session, reason: str) -> None:
        session.closed_reason = reason
        session.interactive_due = None
        self._set_state(session, CLOSED)

    def _fail_queued(self, session: _Session, status: str, error: str) -> None:
        for job in self._jobs_of(session, QUEUED):
            job.status = status
            job.error = error
            job.ended_at = self.now

    def _after_final(self, job: _Job) -> None:
        """Session consequences of `job` reaching a final state."""
        if job.session is None:
            return
        session = self.sessions[job.session]
        if session.state == CLOSED:
            return
        busy = self._jobs_of(session, QUEUED, RUNNING)
        if session.closing and not busy:
            self._close(session, "closed")
        elif session.state == ACTIVE and not busy and session.interactive_due is None:
            # a running job ended or a queued one was cancelled (R3)
            session.interactive_due = self.now + self.settings["interactive_ttl"]

    def _activate(self, session: _Session) -> None:
        other = self._active_session(session.backend)
        if other is not None:
            other.interactive_due = None
            self._set_state(other, INACTIVE)
        session.interactive_due = None
        self._set_state(session, ACTIVE)
        if session.clock_start is None:
            session.clock_start = self.now
        window = self._window(session.backend)
        if window is not None and window.instance == session.instance:
            session.bound = window.id

    # ------------------------------------------------------------------- jobs

    def _start(self, job: _Job, lane: str) -> None:
        job.status = RUNNING
        job.lane = lane
        job.started_at = self.now
        job.end_due = self.now + min(job.duration, self._limit(job))
        self.running[job.backend] = job.name
        self.starts[job.backend].append((self.now, job.name))
        self._mark()
        if job.session is not None:
            session = self.sessions[job.session]
            if session.state in (OPEN, INACTIVE):
                self._activate(session)

    def _limit(self, job: _Job) -> Fraction:
        limit = self.settings["backend_max_runtime"]
        if job.max_execution_time is not None:
            limit = min(limit, job.max_execution_time)
        return limit

    def _finish(self, job: _Job) -> None:
        if job.duration > self._limit(job):  # a run of exactly the limit completes
            job.status = FAILED
            job.error = "max_execution_time_exceeded"
        else:
            job.status = COMPLETED
        self._stop(job)

    def _stop(self, job: _Job) -> None:
        assert job.started_at is not None
        job.ended_at = self.now
        job.end_due = None
        self.running[job.backend] = None
        self._charge(job.instance, self.now - job.started_at)
        self._mark()
        self._after_final(job)

    # ----------------------------------------------------------------- events

    def _apply(self, event: dict[str, Any]) -> None:
        self._mark()
        if "submit" in event:
            self._submit(event["submit"])
        elif "create_session" in event:
            body = event["create_session"]
            if not self._refused_by_allocation(body["instance"]):  # R22
                self._new_session(body["session"], body["backend"], body["instance"], body)
        elif "put_allocation" in event:
            self._put_allocation(event["put_allocation"])
        elif "cancel_job" in event:
            self._cancel_job(event["cancel_job"])
        elif "close_session" in event:
            session = self.sessions.get(event["close_session"])
            if session is not None and session.state != CLOSED:
                session.closing = True
                if not self._jobs_of(session, QUEUED, RUNNING):
                    self._close(session, "closed")
        elif "cancel_session" in event:
            session = self.sessions.get(event["cancel_session"])
            if session is not None and session.state != CLOSED:
                self._fail_queued(session, CANCELLED, "session_cancelled")
                self._close(session, "cancelled")
        elif "backend_status" in event:
            body = event["backend_status"]
            self.backends[body["backend"]] = body["status"]
        else:
            raise ValueError(f"unknown event {event!r}")

    def _new_session(self, name: str, backend: str, instance: str, body: dict[str, Any]) -> None:
        has = "max_ttl" in body and body["max_ttl"] is not None
        session = _Session(
            name=name,
            backend=backend,
            instance=instance,
            created_at=self.now,
            requested_ttl=_frac(body["max_ttl"]) if has else None,
            has_requested=has,
        )
        session.history.append((self.now, OPEN))
        self.sessions[name] = session

    def _refusal(self, body: dict[str, Any]) -> str | None:
        refusal = self._session_refusal(body)
        if refusal is None and self._refused_by_allocation(body["instance"]):
            return "allocation_exhausted"
        return refusal

    def _session_refusal(self, body: dict[str, Any]) -> str | None:
        if body["backend"] not in self.backends:
            return "unknown_backend"
        name = body.get("session")
        if name is None or body.get("start_session"):
            return None
        session = self.sessions.get(name)
        if session is None:
            return "unknown_session"
        if session.backend != body["backend"]:
            return "backend_mismatch"
        if session.instance != body["instance"]:
            return "instance_mismatch"
        if session.state == CLOSED or session.closing:
            return "session_closed"
        return None

    def _submit(self, body: dict[str, Any]) -> None:
        mxt = body.get("max_execution_time")
        job = _Job(
            name=body["job"],
            instance=body["instance"],
            backend=body["backend"],
            session=body.get("session"),
            duration=_frac(body["duration"]),
            max_execution_time=None if mxt is None else _frac(mxt),
            submitted_at=self.now,
            seq=len(self.jobs),
        )
        self.jobs[job.name] = job
        refusal = self._refusal(body)
        if refusal is not None:
            job.status = REJECTED
            job.error = refusal
            return
        if job.session is None:
            return
        if body.get("start_session"):
            self._new_session(job.session, job.backend, job.instance, {})
        session = self.sessions[job.session]
        if not session.first_job_seen:
            session.first_job_seen = True
            if not session.has_requested:
                session.requested_ttl = job.max_execution_time
        if session.state == ACTIVE:
            session.interactive_due = None  # submitted in time: stays active

    def _cancel_job(self, name: str) -> None:
        job = self.jobs.get(name)
        if job is None:
            return
        if job.status == QUEUED:
            job.status = CANCELLED
            job.ended_at = self.now
            self._after_final(job)
        elif job.status == RUNNING:
            job.status = CANCELLED
            self._stop(job)

    # ----------------------------------------------------------------- timers

    def _timers(self) -> list[tuple[Fraction, int, str, Any]]:
        """Every live timer as (due, kind order, tie-break, target)."""
        timers: list[tuple[Fraction, int, str, Any]] = []
        for name in sorted(self.sessions):
            s = self.sessions[name]
            if s.state != CLOSED and s.clock_start is not None:
                timers.append((s.clock_start + self._max_ttl(s), 0, name, s))
            if s.interactive_due is not None:
                timers.append((s.interactive_due, 1, name, s))
            if s.state == OPEN and not s.open_fired:
                timers.append((s.created_at + self.settings["open_timeout"], 2, name, s))
        for i, r in enumerate(self.reservations):
            if not r.start_fired:
                timers.append((r.start, 3, f"{i:06d}", r))
            if not r.end_fired:
                timers.append((r.end, 4, f"{i:06d}", r))
        return timers

    def _fire(self, kind: int, target: Any) -> None:
        self._mark()
        if kind == 0:
            self._fail_queued(target, FAILED, "session_expired")
            self._close(target, "expired")
        elif kind == 1:
            target.interactive_due = None
            self._set_state(target, INACTIVE)
        elif kind == 2:
            target.open_fired = True
            if not self._jobs_of(target, QUEUED):
                self._close(target, "open_timeout")
        elif kind == 3:
            target.start_fired = True
        else:
            target.end_fired = True
            for session in self.sessions.values():
                if session.bound == target.id and session.state != CLOSED:
                    self._fail_queued(session, FAILED, "reservation_ended")
                    self._close(session, "reservation_ended")

    def _fire_due(self) -> None:
        for kind in range(5):
            while True:
                due = [t for t in self._timers() if t[0] == self.now and t[1] == kind]
                if not due:
                    break
                _, _, _, target = min(due, key=lambda t: t[2])
                self._fire(kind, target)
                self._sync_holds()

    # ---------------------------------------------------------------- picking

    def _oldest(self, jobs: list[_Job]) -> _Job:
        return min(jobs, key=lambda j: (j.submitted_at, j.seq))

    def _pick(self, backend: str) -> tuple[_Job, str] | None:
        queued = [j for j in self.jobs.values() if j.status == QUEUED and j.backend == backend]
        active = self._active_session(backend)
        window = self._window(backend)
        if window is not None:
            mine = [j for j in queued if j.instance == window.instance]
            if active is not None and active.instance == window.instance:
                first = [j for j in mine if j.session == active.name]
                if first:
                    return self._oldest(first), "reservation"
            if mine:
                return self._oldest(mine), "reservation"
            if window.exclusive:
                return None
        if active is not None:
            own = [j for j in queued if j.session == active.name]
            if own:
                return self._oldest(own), "session"
            if not active.closing:
                return None  # the active session holds the backend
        eligible = [
            j for j in queued if self._waits_for_fair_share(j) and self._allowed(j, self.now)
        ]
        if not eligible:
            return None
        return self._fair_share(eligible), "fair_share"

    def _fair_share(self, eligible: list[_Job]) -> _Job:
        candidates = eligible
        for depth in (1, 2, 3):
            children: dict[str, list[_Job]] = {}
            for job in candidates:
                node = "/".join(job.instance.split("/")[:depth])
                children.setdefault(node, []).append(job)

            ranked = {node: self._rank(node, jobs) for node, jobs in children.items()}
            candidates = children[min(ranked, key=ranked.__getitem__)]
        return self._oldest(candidates)

    def _rank(self, node: str, jobs: list[_Job]) -> tuple[Fraction, Fraction, int]:
        """Lowest usage / share first; ties to the node holding the oldest job."""
        oldest = self._oldest(jobs)
        return self._usage(node) / self._share(node), oldest.submitted_at, oldest.seq

    def _pick_all(self) -> None:
        for backend in sorted(self.backends):
            if self.backends[backend] != "online" or self.running[backend] is not None:
                continue
            choice = self._pick(backend)
            if choice is not None:
                self._start(*choice)
            self._sync_holds()

    # ------------------------------------------------------------------- loop

    def _ending_now(self) -> list[_Job]:
        return [
            self.jobs[name]
            for backend in sorted(self.backends)
            if (name := self.running[backend]) is not None and self.jobs[name].end_due == self.now
        ]

    def _instant(self) -> None:
        first = True
        while True:
            for job in self._ending_now():  # (1)
                self._finish(job)
                self._sync_holds()
            if first:  # (2)
                while (
                    self.next_event < len(self.events)
                    and _frac(self.events[self.next_event]["at"]) == self.now
                ):
                    self._apply(self.events[self.next_event])
                    self.next_event += 1
                    self._sync_holds()
            self._fire_due()  # (3)
            self._pick_all()  # (4)
            first = False
            if not self._ending_now() and not any(t[0] == self.now for t in self._timers()):
                break

    def _next_instant(self) -> Fraction | None:
        candidates = [t[0] for t in self._timers()]
        for name in self.running.values():
            if name is not None and (due := self.jobs[name].end_due) is not None:
                candidates.append(due)
        if self.next_event < len(self.events):
            candidates.append(_frac(self.events[self.next_event]["at"]))
        freed = self._allocation_instant()
        if freed is not None:
            candidates.append(freed)
        return min(candidates) if candidates else None

    def run(self) -> dict[str, Any]:
        while (instant := self._next_instant()) is not None:
            assert instant >= self.now, "time went backwards"
            self.now = instant
            self._instant()
        self.now = self.end_time
        return self._trace()

    def _trace(self) -> dict[str, Any]:
        jobs = {
            j.name: {
                "status": j.status,
                "backend": j.backend,
                "session": j.session,
                "lane": j.lane,
                "submitted_at": _out(j.submitted_at),
                "started_at": _out(j.started_at),
                "ended_at": _out(j.ended_at),
                "error": j.error,
            }
            for j in self.jobs.values()
        }
        sessions = {
            s.name: {
                "backend": s.backend,
                "instance": s.instance,
                "state": s.state,
                "closed_reason": s.closed_reason,
                "history": [[_out(t), state] for t, state in s.history],
            }
            for s in self.sessions.values()
        }
        return {
            "jobs": jobs,
            "sessions": sessions,
            "starts": {b: [[_out(t), n] for t, n in runs] for b, runs in self.starts.items()},
            "usage": {i: _out(self._usage(i)) for i in sorted(self.instances)},
            "end_time": _out(self.end_time),
        }


def simulate_reference(scenario: dict[str, Any]) -> dict[str, Any]:
    """Replay `scenario` (a scenario dict, docs/simulate.md) and return its trace dict."""
    return _Reference(scenario).run()
