"""Entities and vocabulary of the scheduling rules (docs/rules.md).

Times are plain integers in one unit chosen by the caller (qdash uses
microseconds), so the rules compare and add them exactly.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Job states, as Qiskit Runtime shows them.
QUEUED = "Queued"
RUNNING = "Running"
COMPLETED = "Completed"
FAILED = "Failed"
CANCELLED = "Cancelled"
FINAL_STATES = frozenset({COMPLETED, FAILED, CANCELLED})

# Session states.
OPEN = "open"
ACTIVE = "active"
INACTIVE = "inactive"
CLOSED = "closed"
WAITING_STATES = frozenset({OPEN, INACTIVE})  # their jobs wait in the fair-share lane

# Lanes a job can start from.
RESERVATION = "reservation"
SESSION = "session"
FAIR_SHARE = "fair_share"

# Backend states.
ONLINE = "online"
PAUSED = "paused"

# Session modes.
DEDICATED = "dedicated"
BATCH = "batch"

# Error codes: refusals of a submission...
UNKNOWN_BACKEND = "unknown_backend"
UNKNOWN_SESSION = "unknown_session"
BACKEND_MISMATCH = "backend_mismatch"
INSTANCE_MISMATCH = "instance_mismatch"
SESSION_CLOSED = "session_closed"
ALLOCATION_EXHAUSTED = "allocation_exhausted"
# ...and reasons an accepted job ends without completing.
SESSION_EXPIRED = "session_expired"
SESSION_CANCELLED = "session_cancelled"
RESERVATION_ENDED = "reservation_ended"
MAX_EXECUTION_TIME_EXCEEDED = "max_execution_time_exceeded"

# Allocation enforce modes (docs/rules.md, "Allocations").
QUEUE = "queue"
SAFE = "safe"
REFUSE = "refuse"
ENFORCE_MODES = (QUEUE, SAFE, REFUSE)

# Why a session closed.
CLOSED_EXPIRED = "expired"
CLOSED_BY_USER = "closed"
CLOSED_CANCELLED = "cancelled"
CLOSED_RESERVATION_ENDED = "reservation_ended"
CLOSED_OPEN_TIMEOUT = "open_timeout"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Scheduling settings, in the caller's time unit."""

    interactive_ttl: int
    batch_interactive_ttl: int
    system_max_ttl: int
    open_timeout: int
    usage_window: int
    backend_max_runtime: int


@dataclass(slots=True, eq=False, kw_only=True)
class Reservation:
    """A window `[start, end)` on one backend for one instance."""

    id: str
    backend: str
    instance: str
    start: int
    end: int
    exclusive: bool = False
    started: bool = False
    ended: bool = False
    removed: bool = False  # deleted by an operator: its timers are dead


@dataclass(slots=True, eq=False, kw_only=True)
class Session:
    """A session bound to one backend and one instance."""

    id: str
    backend: str
    instance: str
    created_at: int
    seq: int
    interactive_ttl: int
    mode: str = DEDICATED
    state: str = OPEN
    accepting_jobs: bool = True
    max_ttl: int | None = None  # effective max TTL, fixed at creation or by the first job
    ttl_deadline: int | None = None
    interactive_deadline: int | None = None
    open_deadline: int | None = None
    bound_reservation: str | None = None
    closed_reason: str | None = None
    history: list[tuple[int, str]] = field(default_factory=list)
    # Index kept by the policy: this session's queued jobs, oldest first (lazily trimmed).
    queue: deque[Job] = field(default_factory=deque)
    queued_count: int = 0

    def head(self) -> Job | None:
        """Oldest queued job of the session."""
        queue = self.queue
        while queue and queue[0].status != QUEUED:
            queue.popleft()
        return queue[0] if queue else None


@dataclass(slots=True, eq=False, kw_only=True)
class Job:
    """A job for one backend, in one instance, maybe in a session."""

    id: str
    instance: str
    backend: str
    submitted_at: int
    seq: int
    duration: int | None = None  # known run time; None = runs until reported finished
    max_execution_time: int | None = None
    session: Session | None = None
    status: str = QUEUED
    lane: str | None = None
    started_at: int | None = None
    ended_at: int | None = None
    error: str | None = None
    limit: int | None = None  # runtime limit fixed when the job starts
    end_due: int | None = None
    expected: int | None = None  # modeled run time, for estimates when `duration` is unknown
    key: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        self.key = (self.submitted_at, self.seq)

    @property
    def session_id(self) -> str | None:
        return self.session.id if self.session is not None else None


@dataclass(slots=True, eq=False, kw_only=True)
class Backend:
    """A backend: runs one job at a time."""

    name: str
    status: str = ONLINE
    max_runtime: int | None = None  # None = the system's backend limit
    running: Job | None = None
    active_session: Session | None = None
    reservation: Reservation | None = None  # the reservation whose window is open now
    hold_session: Session | None = None
    hold_since: int | None = None


@dataclass(frozen=True, slots=True)
class Period:
    """Fixed allocation periods `[start + k*length, start + (k+1)*length)`, k >= 0."""

    start: int
    length: int

    def __post_init__(self) -> None:
        if self.length <= 0:
            raise ValueError("a period's length must be positive")

    def containing(self, t: int) -> int | None:
        """Start of the period that contains `t` (None before the first one)."""
        if t < self.start:
            return None
        return t - (t - self.start) % self.length


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocation:
    """A usage limit on one instance-tree node: `amount` of usage per period.

    `period` None is the rolling usage window. Times in the caller's unit.
    """

    node: str
    amount: int
    enforce: str = QUEUE
    period: Period | None = None

    def __post_init__(self) -> None:
        if self.amount < 0:
            raise ValueError("an allocation's amount cannot be negative")
        if self.enforce not in ENFORCE_MODES:
            raise ValueError(f"unknown enforce mode {self.enforce!r}")


# What callers ask the policy to do.
@dataclass(frozen=True, slots=True, kw_only=True)
class Submit:
    job: str
    instance: str
    backend: str
    duration: int | None = None
    session: str | None = None
    start_session: bool = False
    max_execution_time: int | None = None
    mode: str = DEDICATED  # for a session started by this job
    expected: int | None = None  # modeled run time when `duration` is None


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateSession:
    session: str
    instance: str
    backend: str
    max_ttl: int | None = None
    mode: str = DEDICATED


@dataclass(frozen=True, slots=True)
class CancelJob:
    job: str


@dataclass(frozen=True, slots=True)
class FinishJob:
    """The executor reports a running job's end before its modeled time (or a failure)."""

    job: str
    status: str = COMPLETED
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CloseSession:
    session: str


@dataclass(frozen=True, slots=True)
class CancelSession:
    session: str


@dataclass(frozen=True, slots=True)
class SetBackendStatus:
    backend: str
    status: str


@dataclass(frozen=True, slots=True)
class PutReservation:
    """An operator adds a reservation or changes its window (docs/rules.md, "Changes")."""

    backend: str
    instance: str
    id: str
    start: int
    end: int
    exclusive: bool = False


@dataclass(frozen=True, slots=True)
class RemoveReservation:
    reservation: str


@dataclass(frozen=True, slots=True)
class SetShare:
    node: str
    share: float


@dataclass(frozen=True, slots=True)
class PutBackend:
    """An operator adds a backend or changes its runtime limit."""

    name: str
    max_runtime: int | None = None
    status: str = ONLINE  # of a new backend; a known one changes status by SetBackendStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class PutAllocation:
    """An operator sets a node's allocation (replacing any), or removes it (`amount` None)."""

    node: str
    amount: int | None
    enforce: str = QUEUE
    period: Period | None = None

    def allocation(self) -> Allocation | None:
        if self.amount is None:
            return None
        return Allocation(
            node=self.node, amount=self.amount, enforce=self.enforce, period=self.period
        )


Action = (
    Submit
    | CreateSession
    | CancelJob
    | FinishJob
    | CloseSession
    | CancelSession
    | SetBackendStatus
    | PutReservation
    | RemoveReservation
    | SetShare
    | PutBackend
    | PutAllocation
)


@dataclass(frozen=True, slots=True)
class ReservationWarning:
    """A new session that a reservation of its instance may bind (docs/rules.md)."""

    reservation: str
    start: int
    end: int
    in_window: bool


@dataclass(frozen=True, slots=True)
class Outcome:
    """The answer to one action: accepted, or refused with an error code."""

    accepted: bool
    code: str | None = None
    warnings: tuple[ReservationWarning, ...] = ()


ACCEPTED = Outcome(True)


class Event(NamedTuple):
    """One state change, for the event log and for live updates."""

    at: int
    kind: str
    subject: Any  # the Job, Session, Backend or Reservation that changed
    detail: dict[str, Any]


class Charge(NamedTuple):
    """A run or a hold charged to an instance when it ended (docs/rules.md)."""

    end: int
    instance: str
    amount: int
    source: Job | Session  # the job that ran, or the session that held


@dataclass(slots=True, kw_only=True)
class Instant:
    """What `Policy.run_instant` did: the answers to its actions and every change."""

    outcomes: list[Outcome] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    started: list[Job] = field(default_factory=list)  # in start order
    charges: list[Charge] = field(default_factory=list)

    def extend(self, other: Instant) -> None:
        """Append what a later call did (the outcomes stay this call's)."""
        self.events += other.events
        self.started += other.started
        self.charges += other.charges
