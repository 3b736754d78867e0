"""Virtual-clock driver over the policy: `manage.py simulate` (docs/simulate.md).

A scenario is validated into policy actions with times in microseconds, then
replayed instant by instant through an engine: `MemoryEngine` (the pure policy)
here, or the database-backed engine of `scheduler.engine`. Both hand back the
final state, from which one function writes the trace.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from .policy import Policy
from .policy import model as m

US = 1_000_000  # policy time unit: microseconds

Seconds = Annotated[StrictInt | StrictFloat, Field(ge=0, allow_inf_nan=False)]
Time = Annotated[StrictInt | StrictFloat, Field(allow_inf_nan=False)]
Instance = Annotated[StrictStr, Field(pattern=r"^[^/\s]+/[^/\s]+/[^/\s]+$")]
EVENT_KINDS = (
    "submit",
    "create_session",
    "cancel_job",
    "close_session",
    "cancel_session",
    "backend_status",
)


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message is one line naming the field."""


def to_us(seconds: float) -> int:
    return round(seconds * US)


def to_seconds(us: int | None) -> int | float | None:
    if us is None:
        return None
    return us // US if us % US == 0 else us / US


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True)


class SettingsSpec(_Spec):
    interactive_ttl: Seconds = 60
    system_max_ttl: Seconds = 28800
    open_timeout: Seconds = 1800
    usage_window: Seconds = 2419200
    backend_max_runtime: Seconds = 10800


class BackendSpec(_Spec):
    name: StrictStr
    status: Literal["online", "paused"] = "online"


class ReservationSpec(_Spec):
    id: StrictStr
    backend: StrictStr
    instance: Instance
    start: Time
    end: Time
    exclusive: StrictBool = False

    @model_validator(mode="after")
    def _end_after_start(self) -> ReservationSpec:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class SubmitSpec(_Spec):
    job: StrictStr
    instance: Instance
    backend: StrictStr
    duration: Seconds
    start_session: StrictBool = False
    session: StrictStr | None = None
    max_execution_time: Seconds | None = None

    @model_validator(mode="after")
    def _session_named(self) -> SubmitSpec:
        if self.start_session and self.session is None:
            raise ValueError("start_session needs a session name")
        return self


class CreateSessionSpec(_Spec):
    session: StrictStr
    instance: Instance
    backend: StrictStr
    max_ttl: Seconds | None = None


class BackendStatusSpec(_Spec):
    backend: StrictStr
    status: Literal["online", "paused"]


class EventSpec(_Spec):
    at: Seconds
    submit: SubmitSpec | None = None
    create_session: CreateSessionSpec | None = None
    cancel_job: StrictStr | None = None
    close_session: StrictStr | None = None
    cancel_session: StrictStr | None = None
    backend_status: BackendStatusSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_kind(cls, data: Any) -> Any:
        if isinstance(data, dict):
            kinds = [key for key in data if key != "at"]
            unknown = [key for key in kinds if key not in EVENT_KINDS]
            if unknown:
                raise ValueError(f"unknown event kind {unknown[0]!r}")
            if len(kinds) != 1:
                raise ValueError(f"needs exactly one of {', '.join(EVENT_KINDS)}")
        return data

    @property
    def kind(self) -> str:
        return next(kind for kind in EVENT_KINDS if getattr(self, kind) is not None)


class ScenarioSpec(_Spec):
    settings: SettingsSpec = SettingsSpec()
    backends: list[BackendSpec]
    shares: dict[str, Annotated[StrictInt | StrictFloat, Field(ge=0, allow_inf_nan=False)]] = {}
    usage: dict[Instance, Seconds] = {}
    reservations: list[ReservationSpec] = []
    events: list[EventSpec] = []


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: policy settings, fixtures and timed actions (µs)."""

    settings: m.Settings
    backends: list[m.Backend]
    shares: dict[str, float]
    usage: dict[str, int]
    reservations: list[m.Reservation]
    events: list[tuple[int, m.Action]]  # sorted by time, file order kept within an instant
    instances: list[str]  # every instance the scenario names


def _error_line(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ""
    for part in first["loc"]:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    message = first["msg"].removeprefix("Value error, ")
    return f"{where or 'scenario'}: {message}"


def parse_scenario(raw: bytes | str) -> Scenario:
    """Validate a scenario document; raise ScenarioError naming the bad field."""
    try:
        spec = ScenarioSpec.model_validate_json(raw)
    except ValidationError as error:
        raise ScenarioError(_error_line(error)) from None
    return _build(spec)


def load_scenario(path: str | Path) -> Scenario:
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise ScenarioError(f"{path}: {error.strerror}") from None
    return parse_scenario(raw)


def _check_unique(names: Iterable[tuple[str, str]], what: str) -> None:
    seen: set[str] = set()
    for where, name in names:
        if name in seen:
            raise ScenarioError(f"{where}: duplicate {what} name {name!r}")
        seen.add(name)


def _build(spec: ScenarioSpec) -> Scenario:
    backends = {b.name for b in spec.backends}
    _check_unique(((f"backends[{i}].name", b.name) for i, b in enumerate(spec.backends)), "backend")
    _check_unique(
        ((f"reservations[{i}].id", r.id) for i, r in enumerate(spec.reservations)), "reservation"
    )
    for i, r in enumerate(spec.reservations):
        if r.backend not in backends:
            raise ScenarioError(f"reservations[{i}].backend: unknown backend {r.backend!r}")
    _check_overlaps(spec.reservations)
    jobs, sessions = [], []
    for i, event in enumerate(spec.events):
        if event.submit is not None:
            jobs.append((f"events[{i}].submit.job", event.submit.job))
            if event.submit.start_session:
                sessions.append((f"events[{i}].submit.session", event.submit.session or ""))
        elif event.create_session is not None:
            sessions.append((f"events[{i}].create_session.session", event.create_session.session))
            if event.create_session.backend not in backends:
                raise ScenarioError(
                    f"events[{i}].create_session.backend: unknown backend "
                    f"{event.create_session.backend!r}"
                )
        elif event.backend_status is not None and event.backend_status.backend not in backends:
            raise ScenarioError(
                f"events[{i}].backend_status.backend: unknown backend "
                f"{event.backend_status.backend!r}"
            )
    _check_unique(jobs, "job")
    _check_unique(sessions, "session")
    s = spec.settings
    settings = m.Settings(
        interactive_ttl=to_us(s.interactive_ttl),
        batch_interactive_ttl=to_us(s.interactive_ttl),
        system_max_ttl=to_us(s.system_max_ttl),
        open_timeout=to_us(s.open_timeout),
        usage_window=to_us(s.usage_window),
        backend_max_runtime=to_us(s.backend_max_runtime),
    )
    timed = sorted(
        ((to_us(e.at), i, _action(e)) for i, e in enumerate(spec.events)),
        key=lambda item: (item[0], item[1]),
    )
    return Scenario(
        settings=settings,
        backends=[m.Backend(b.name, b.status) for b in spec.backends],
        shares=dict(spec.shares),
        usage={instance: to_us(used) for instance, used in spec.usage.items()},
        reservations=[
            m.Reservation(r.id, r.backend, r.instance, to_us(r.start), to_us(r.end), r.exclusive)
            for r in spec.reservations
        ],
        events=[(at, action) for at, _, action in timed],
        instances=_named_instances(spec),
    )


def _check_overlaps(reservations: Sequence[ReservationSpec]) -> None:
    by_backend: dict[str, list[tuple[float, float, int]]] = {}
    for i, r in enumerate(reservations):
        by_backend.setdefault(r.backend, []).append((r.start, r.end, i))
    for windows in by_backend.values():
        windows.sort()
        for (_, end, i), (start, _, j) in zip(windows, windows[1:], strict=False):
            if start < end:
                raise ScenarioError(
                    f"reservations[{max(i, j)}]: overlaps reservations"
                    f"[{min(i, j)}] on the same backend"
                )


def _named_instances(spec: ScenarioSpec) -> list[str]:
    names = dict.fromkeys(spec.usage)
    names.update(dict.fromkeys(n for n in spec.shares if n.count("/") == 2))
    names.update(dict.fromkeys(r.instance for r in spec.reservations))
    for e in spec.events:
        if e.submit is not None:
            names[e.submit.instance] = None
        elif e.create_session is not None:
            names[e.create_session.instance] = None
    return list(names)


def _optional_us(seconds: float | None) -> int | None:
    return None if seconds is None else to_us(seconds)


def _action(event: EventSpec) -> m.Action:
    if event.submit is not None:
        s = event.submit
        return m.Submit(
            s.job,
            s.instance,
            s.backend,
            to_us(s.duration),
            s.session,
            s.start_session,
            _optional_us(s.max_execution_time),
        )
    if event.create_session is not None:
        c = event.create_session
        return m.CreateSession(c.session, c.instance, c.backend, _optional_us(c.max_ttl))
    if event.cancel_job is not None:
        return m.CancelJob(event.cancel_job)
    if event.close_session is not None:
        return m.CloseSession(event.close_session)
    if event.cancel_session is not None:
        return m.CancelSession(event.cancel_session)
    assert event.backend_status is not None
    return m.SetBackendStatus(event.backend_status.backend, event.backend_status.status)


# ------------------------------------------------------------------ engines
@dataclass
class FinalState:
    """What a finished run hands to the trace writer."""

    jobs: Mapping[str, m.Job]
    sessions: Mapping[str, m.Session]
    starts: Mapping[str, list[tuple[int, str]]]  # backend -> (time, job) in start order
    usage: Callable[[str], int]  # instance -> usage at the end time


class Engine(Protocol):
    def run_instant(self, t: int, actions: Sequence[m.Action]) -> list[m.Outcome]: ...
    def next_due(self) -> int | None: ...
    @property
    def last_activity(self) -> int | None: ...
    def final_state(self, end_time: int) -> FinalState: ...


def build_policy(scenario: Scenario, *, record: bool = False) -> Policy:
    """A policy holding a scenario's backends, reservations, shares and prior usage."""
    policy = Policy(scenario.settings, record=record)
    for backend in scenario.backends:
        policy.add_backend(m.Backend(backend.name, backend.status))
    for reservation in scenario.reservations:
        policy.add_reservation(
            m.Reservation(
                reservation.id,
                reservation.backend,
                reservation.instance,
                reservation.start,
                reservation.end,
                reservation.exclusive,
            )
        )
    for node, share in scenario.shares.items():
        policy.set_share(node, share)
    policy.usage.load((0, instance, used) for instance, used in scenario.usage.items())
    return policy


@dataclass
class MemoryEngine:
    """The pure policy, keeping the order in which backends start jobs."""

    scenario: Scenario
    policy: Policy = field(init=False)
    starts: dict[str, list[tuple[int, str]]] = field(init=False)

    def __post_init__(self) -> None:
        self.policy = build_policy(self.scenario)
        self.policy.started = []
        self.starts = {b.name: [] for b in self.scenario.backends}

    def run_instant(self, t: int, actions: Sequence[m.Action]) -> list[m.Outcome]:
        outcomes = self.policy.run_instant(t, actions)
        started = self.policy.started
        assert started is not None
        for job in started:
            assert job.started_at is not None
            self.starts[job.backend].append((job.started_at, job.id))
        started.clear()
        return outcomes

    def next_due(self) -> int | None:
        return self.policy.next_due()

    @property
    def last_activity(self) -> int | None:
        return self.policy.last_activity

    def final_state(self, end_time: int) -> FinalState:
        ledger = self.policy.usage
        ledger.expire(end_time)
        return FinalState(self.policy.jobs, self.policy.sessions, self.starts, ledger.of)


# -------------------------------------------------------------------- driver
def simulate(scenario: Scenario, engine: Engine) -> dict[str, Any]:
    """Replay every event of `scenario` through `engine` and return the trace."""
    events = scenario.events
    refused: dict[str, tuple[int, m.Submit, str]] = {}
    end_time: int | None = None
    i = 0
    while True:
        due = engine.next_due()
        if i < len(events) and (due is None or events[i][0] <= due):
            t = events[i][0]
        elif due is not None:
            t = due
        else:
            break
        batch = []
        while i < len(events) and events[i][0] == t:
            batch.append(events[i][1])
            i += 1
        outcomes = engine.run_instant(t, batch)
        for action, outcome in zip(batch, outcomes, strict=True):
            if isinstance(action, m.Submit) and not outcome.accepted:
                refused[action.job] = (t, action, outcome.code or "")
        if batch:
            end_time = t
    last = engine.last_activity
    end = max(x for x in (end_time, last, 0) if x is not None)
    return write_trace(scenario, engine.final_state(end), refused, end)


def write_trace(
    scenario: Scenario,
    final: FinalState,
    refused: Mapping[str, tuple[int, m.Submit, str]],
    end_time: int,
) -> dict[str, Any]:
    """The trace document of docs/simulate.md."""
    jobs: dict[str, Any] = {}
    for _, action in scenario.events:
        if not isinstance(action, m.Submit):
            continue
        if action.job in refused:
            at, _, code = refused[action.job]
            jobs[action.job] = {
                "status": "Rejected",
                "backend": action.backend,
                "session": action.session,
                "lane": None,
                "submitted_at": to_seconds(at),
                "started_at": None,
                "ended_at": None,
                "error": code,
            }
            continue
        job = final.jobs[action.job]
        jobs[action.job] = {
            "status": job.status,
            "backend": job.backend,
            "session": job.session_id,
            "lane": job.lane,
            "submitted_at": to_seconds(job.submitted_at),
            "started_at": to_seconds(job.started_at),
            "ended_at": to_seconds(job.ended_at),
            "error": job.error,
        }
    sessions = {
        name: {
            "backend": s.backend,
            "instance": s.instance,
            "state": s.state,
            "closed_reason": s.closed_reason,
            "history": [[to_seconds(at), state] for at, state in s.history],
        }
        for name, s in final.sessions.items()
    }
    return {
        "jobs": jobs,
        "sessions": sessions,
        "starts": {
            b.name: [[to_seconds(at), job] for at, job in final.starts.get(b.name, [])]
            for b in scenario.backends
        },
        "usage": {instance: to_seconds(final.usage(instance)) for instance in scenario.instances},
        "end_time": to_seconds(end_time),
    }


def dump_trace(trace: Mapping[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(trace, indent=1) + "\n")
