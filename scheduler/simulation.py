"""Virtual-clock driver over the policy: `manage.py simulate` (docs/simulate.md).

A scenario is validated into policy actions with times in microseconds, then
replayed instant by instant through an engine: `MemoryEngine` (the pure policy)
here, or the database-backed engine of `scheduler.engine`. Both hand back the
final state, from which one function writes the trace.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal, NotRequired, Protocol

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictStr,
    TypeAdapter,
    ValidationError,
    with_config,
)
from typing_extensions import TypedDict

from .policy import Policy
from .policy import model as m

US = 1_000_000  # policy time unit: microseconds

# Strict floats accept JSON integers but not booleans or strings.
Seconds = Annotated[StrictFloat, Field(ge=0, allow_inf_nan=False)]
Time = Annotated[StrictFloat, Field(allow_inf_nan=False)]
Instance = Annotated[StrictStr, Field(pattern=r"^[^/\s]+/[^/\s]+/[^/\s]+$")]
EVENT_KINDS = (
    "submit",
    "create_session",
    "cancel_job",
    "close_session",
    "cancel_session",
    "backend_status",
    "put_reservation",
)
Mode = Literal["dedicated", "batch"]


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message is one line naming the field."""


def to_us(seconds: float) -> int:
    return round(seconds * US)


def to_seconds(us: int | None) -> int | float | None:
    if us is None:
        return None
    return us // US if us % US == 0 else us / US


# The file's shape, validated in one pass by pydantic (TypedDicts keep it fast
# for million-event files); the checks that relate fields follow in `_build`.
@with_config(ConfigDict(extra="ignore"))
class SettingsSpec(TypedDict, total=False):
    interactive_ttl: Seconds
    batch_interactive_ttl: Seconds
    system_max_ttl: Seconds
    open_timeout: Seconds
    usage_window: Seconds
    backend_max_runtime: Seconds


@with_config(ConfigDict(extra="ignore"))
class BackendSpec(TypedDict):
    name: StrictStr
    status: NotRequired[Literal["online", "paused"]]
    max_runtime: NotRequired[Seconds | None]


@with_config(ConfigDict(extra="ignore"))
class ReservationSpec(TypedDict):
    id: StrictStr
    backend: StrictStr
    instance: Instance
    start: Time
    end: Time
    exclusive: NotRequired[StrictBool]


@with_config(ConfigDict(extra="ignore"))
class SubmitSpec(TypedDict):
    job: StrictStr
    instance: Instance
    backend: StrictStr
    duration: Seconds | None  # None: runs until it is cancelled or reaches its limit
    start_session: NotRequired[StrictBool]
    session: NotRequired[StrictStr | None]
    max_execution_time: NotRequired[Seconds | None]
    mode: NotRequired[Mode]
    fails: NotRequired[StrictStr | None]  # its executor fails it with this code at its end


@with_config(ConfigDict(extra="ignore"))
class CreateSessionSpec(TypedDict):
    session: StrictStr
    instance: Instance
    backend: StrictStr
    max_ttl: NotRequired[Seconds | None]
    mode: NotRequired[Mode]


@with_config(ConfigDict(extra="ignore"))
class BackendStatusSpec(TypedDict):
    backend: StrictStr
    status: Literal["online", "paused"]


@with_config(ConfigDict(extra="forbid"))
class EventSpec(TypedDict):
    at: Seconds
    submit: NotRequired[SubmitSpec]
    create_session: NotRequired[CreateSessionSpec]
    cancel_job: NotRequired[StrictStr]
    close_session: NotRequired[StrictStr]
    cancel_session: NotRequired[StrictStr]
    backend_status: NotRequired[BackendStatusSpec]
    put_reservation: NotRequired[ReservationSpec]


@with_config(ConfigDict(extra="ignore"))
class ScenarioSpec(TypedDict):
    settings: NotRequired[SettingsSpec]
    backends: list[BackendSpec]
    shares: NotRequired[dict[str, Seconds]]
    usage: NotRequired[dict[Instance, Seconds]]
    reservations: NotRequired[list[ReservationSpec]]
    events: NotRequired[list[EventSpec]]
    until: NotRequired[Time]


SCENARIO = TypeAdapter(ScenarioSpec)
SETTING_DEFAULTS: dict[str, float] = {
    "interactive_ttl": 60,
    "system_max_ttl": 28800,
    "open_timeout": 1800,
    "usage_window": 2419200,
    "backend_max_runtime": 10800,
}


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
    until: int | None = None  # the run stops after this instant (None: when nothing is due)
    failures: dict[str, str] = field(default_factory=dict)  # job -> the error it fails with


def _error_line(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = list(first["loc"])
    message = first["msg"]
    if first["type"] == "extra_forbidden":  # only events forbid extra keys
        message = f"unknown event kind {loc.pop()!r}"
    elif first["type"] == "string_pattern_mismatch":
        message = "must be hub/group/project"
    return f"{_where(loc)}: {message}"


def _where(loc: Sequence[int | str]) -> str:
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where or "scenario"


def parse_scenario(raw: bytes | str) -> Scenario:
    """Validate a scenario document; raise ScenarioError naming the bad field."""
    try:
        spec = SCENARIO.validate_json(raw)
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
    backends = {b["name"] for b in spec["backends"]}
    reservations = spec.get("reservations", [])
    events = spec.get("events", [])
    _check_unique(
        ((f"backends[{i}].name", b["name"]) for i, b in enumerate(spec["backends"])), "backend"
    )
    _check_unique(
        ((f"reservations[{i}].id", r["id"]) for i, r in enumerate(reservations)), "reservation"
    )
    for i, r in enumerate(reservations):
        if r["backend"] not in backends:
            raise ScenarioError(f"reservations[{i}].backend: unknown backend {r['backend']!r}")
        if r["end"] <= r["start"]:
            raise ScenarioError(f"reservations[{i}].end: must be after start")
    _check_overlaps(reservations)
    actions = [_event_action(i, event, backends) for i, event in enumerate(events)]
    _check_unique(
        (
            (f"events[{i}].submit.job", a.job)
            for i, a in enumerate(actions)
            if isinstance(a, m.Submit)
        ),
        "job",
    )
    _check_unique(_created_sessions(actions), "session")
    s = dict(SETTING_DEFAULTS)
    s.update(spec.get("settings", {}))  # type: ignore[arg-type]  # a TypedDict of floats
    settings = m.Settings(
        interactive_ttl=to_us(s["interactive_ttl"]),
        batch_interactive_ttl=to_us(s.get("batch_interactive_ttl", s["interactive_ttl"])),
        system_max_ttl=to_us(s["system_max_ttl"]),
        open_timeout=to_us(s["open_timeout"]),
        usage_window=to_us(s["usage_window"]),
        backend_max_runtime=to_us(s["backend_max_runtime"]),
    )
    order = sorted(range(len(events)), key=lambda i: events[i]["at"])  # stable: file order kept
    return Scenario(
        settings=settings,
        backends=[
            m.Backend(
                name=b["name"],
                status=b.get("status", m.ONLINE),
                max_runtime=_us(b.get("max_runtime")),
            )
            for b in spec["backends"]
        ],
        shares=dict(spec.get("shares", {})),
        usage={instance: to_us(used) for instance, used in spec.get("usage", {}).items()},
        reservations=[
            m.Reservation(
                id=r["id"],
                backend=r["backend"],
                instance=r["instance"],
                start=to_us(r["start"]),
                end=to_us(r["end"]),
                exclusive=r.get("exclusive", False),
            )
            for r in reservations
        ],
        events=[(to_us(events[i]["at"]), actions[i]) for i in order],
        instances=_named_instances(spec, actions),
        until=_us(spec.get("until")),
        failures={
            e["submit"]["job"]: fails
            for e in events
            if "submit" in e and (fails := e["submit"].get("fails"))
        },
    )


def _created_sessions(actions: Sequence[m.Action]) -> Iterable[tuple[str, str]]:
    for i, a in enumerate(actions):
        if isinstance(a, m.CreateSession):
            yield f"events[{i}].create_session.session", a.session
        elif isinstance(a, m.Submit) and a.start_session and a.session is not None:
            yield f"events[{i}].submit.session", a.session


def _check_overlaps(reservations: Sequence[ReservationSpec]) -> None:
    by_backend: dict[str, list[tuple[float, float, int]]] = {}
    for i, r in enumerate(reservations):
        by_backend.setdefault(r["backend"], []).append((r["start"], r["end"], i))
    for windows in by_backend.values():
        windows.sort()
        for (_, end, i), (start, _, j) in zip(windows, windows[1:], strict=False):
            if start < end:
                raise ScenarioError(
                    f"reservations[{max(i, j)}]: overlaps reservations"
                    f"[{min(i, j)}] on the same backend"
                )


def _named_instances(spec: ScenarioSpec, actions: Sequence[m.Action]) -> list[str]:
    names = dict.fromkeys(spec.get("usage", {}))
    names.update(dict.fromkeys(n for n in spec.get("shares", {}) if n.count("/") == 2))
    names.update(dict.fromkeys(r["instance"] for r in spec.get("reservations", [])))
    names.update(
        dict.fromkeys(
            a.instance
            for a in actions
            if isinstance(a, m.Submit | m.CreateSession | m.PutReservation)
        )
    )
    return list(names)


def _us(seconds: float | None) -> int | None:
    return None if seconds is None else to_us(seconds)


def _event_action(i: int, event: EventSpec, backends: set[str]) -> m.Action:
    """The policy action of one event, after the checks that relate its fields."""
    kinds = [kind for kind in EVENT_KINDS if kind in event]
    if len(kinds) != 1:
        raise ScenarioError(f"events[{i}]: needs exactly one of {', '.join(EVENT_KINDS)}")
    kind = kinds[0]
    if "submit" in event:
        s = event["submit"]
        session = s.get("session")
        if s.get("start_session", False) and session is None:
            raise ScenarioError(f"events[{i}].submit.session: start_session needs a session name")
        return m.Submit(
            job=s["job"],
            instance=s["instance"],
            backend=s["backend"],
            duration=_us(s["duration"]),
            session=session,
            start_session=s.get("start_session", False),
            max_execution_time=_us(s.get("max_execution_time")),
            mode=s.get("mode", m.DEDICATED),
        )
    if "create_session" in event:
        c = event["create_session"]
        _known_backend(backends, c["backend"], f"events[{i}].create_session.backend")
        return m.CreateSession(
            session=c["session"],
            instance=c["instance"],
            backend=c["backend"],
            max_ttl=_us(c.get("max_ttl")),
            mode=c.get("mode", m.DEDICATED),
        )
    if "backend_status" in event:
        b = event["backend_status"]
        _known_backend(backends, b["backend"], f"events[{i}].backend_status.backend")
        return m.SetBackendStatus(b["backend"], b["status"])
    if "put_reservation" in event:
        r = event["put_reservation"]
        _known_backend(backends, r["backend"], f"events[{i}].put_reservation.backend")
        if r["end"] <= r["start"]:
            raise ScenarioError(f"events[{i}].put_reservation.end: must be after start")
        return m.PutReservation(
            r["backend"],
            r["instance"],
            r["id"],
            to_us(r["start"]),
            to_us(r["end"]),
            r.get("exclusive", False),
        )
    name = event[kind]  # type: ignore[literal-required]
    if kind == "cancel_job":
        return m.CancelJob(name)
    return m.CloseSession(name) if kind == "close_session" else m.CancelSession(name)


def _known_backend(backends: set[str], name: str, where: str) -> None:
    if name not in backends:
        raise ScenarioError(f"{where}: unknown backend {name!r}")


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


def build_policy(scenario: Scenario) -> Policy:
    """A policy holding a scenario's backends, reservations, shares and prior usage."""
    policy = Policy(scenario.settings)
    for backend in scenario.backends:
        policy.add_backend(m.Backend(name=backend.name, status=backend.status))
    for r in scenario.reservations:
        policy.add_reservation(
            m.Reservation(
                id=r.id,
                backend=r.backend,
                instance=r.instance,
                start=r.start,
                end=r.end,
                exclusive=r.exclusive,
            )
        )
    for node, share in scenario.shares.items():
        policy.set_share(node, share)
    policy.usage.load((0, instance, used) for instance, used in scenario.usage.items())
    return policy


@dataclass
class MemoryEngine:
    """The pure policy, keeping the order in which backends start jobs.

    A job the scenario says `fails` runs with no known end; its executor's report
    (a failure with that code, its duration after it started) applies first among
    the actions of its instant, as the live leader applies executors' reports (one
    due at the instant the job started, a zero duration, in a second pass there).
    """

    scenario: Scenario
    policy: Policy = field(init=False)
    starts: dict[str, list[tuple[int, str]]] = field(init=False)
    _runs: dict[str, int] = field(init=False, default_factory=dict)  # failing job -> run time
    _reports: list[tuple[int, str]] = field(init=False, default_factory=list)  # heap

    def __post_init__(self) -> None:
        self.policy = build_policy(self.scenario)
        self.starts = {b.name: [] for b in self.scenario.backends}

    def run_instant(self, t: int, actions: Sequence[m.Action]) -> list[m.Outcome]:
        if not self.scenario.failures:
            instant = self.policy.run_instant(t, actions, log=False)
            self._started(instant.started)
            return instant.outcomes
        reports = self._due_reports(t)
        actions = reports + [self._unknown_end(a) for a in actions]
        instant = self.policy.run_instant(t, actions, log=False)
        self._started(instant.started)
        while late := self._due_reports(t):  # jobs that started at t and failed at once
            self._started(self.policy.run_instant(t, late, log=False).started)
        return instant.outcomes[len(reports) :]

    def _due_reports(self, t: int) -> list[m.Action]:
        reports = self._reports
        due: list[m.Action] = []
        while reports and reports[0][0] <= t:
            job = heapq.heappop(reports)[1]
            due.append(m.FinishJob(job, m.FAILED, self.scenario.failures[job]))
        return due

    def _unknown_end(self, action: m.Action) -> m.Action:
        if not isinstance(action, m.Submit) or action.job not in self.scenario.failures:
            return action
        if action.duration is not None:
            self._runs[action.job] = action.duration
        return replace(action, duration=None, expected=action.duration)

    def _started(self, jobs: Iterable[m.Job]) -> None:
        for job in jobs:
            assert job.started_at is not None
            self.starts[job.backend].append((job.started_at, job.id))
            run = self._runs.get(job.id)
            if run is not None:
                heapq.heappush(self._reports, (job.started_at + run, job.id))

    def next_due(self) -> int | None:
        due = self.policy.next_due()
        reports = self._reports
        while reports and self.policy.jobs[reports[0][1]].status != m.RUNNING:
            heapq.heappop(reports)  # cancelled or failed at its limit before its report
        if reports and (due is None or reports[0][0] < due):
            return reports[0][0]
        return due

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
    until = scenario.until
    while True:
        due = engine.next_due()
        if i < len(events) and (due is None or events[i][0] <= due):
            t = events[i][0]
        elif due is not None:
            t = due
        else:
            break
        if until is not None and t > until:
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
    ordered = sorted(final.sessions.items(), key=lambda item: (item[1].created_at, item[1].seq))
    sessions = {
        name: {
            "backend": s.backend,
            "instance": s.instance,
            "state": s.state,
            "closed_reason": s.closed_reason,
            "history": [[to_seconds(at), state] for at, state in s.history],
        }
        for name, s in ordered
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
    # Indented for reading; compact (and several times faster) for large traces.
    indent = 1 if len(trace["jobs"]) <= 10_000 else None
    Path(path).write_text(json.dumps(trace, indent=indent) + "\n")
