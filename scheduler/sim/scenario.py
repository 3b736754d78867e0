"""Scenarios (docs/simulate.md): the file's schema, and its checks, into policy actions.

A scenario is validated in one pass (pydantic), then the checks that relate its
fields; times become policy ticks once, here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal, NotRequired

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

from scheduler.clock import maybe_seconds_ticks, seconds_ticks
from scheduler.policy import model as m
from scheduler.rule_settings import settings_in_ticks
from scheduler.sim import allocations as alloc

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
    "remove_reservation",
    "put_allocation",
    "set_share",
    "backend_max_runtime",
)
Mode = Literal["dedicated", "batch"]


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message is one line naming the field."""


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
    expected: NotRequired[Seconds | None]  # its modeled run time, when it differs from duration


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


@with_config(ConfigDict(extra="ignore"))
class ShareSpec(TypedDict):
    node: alloc.Node
    share: Seconds


@with_config(ConfigDict(extra="ignore"))
class MaxRuntimeSpec(TypedDict):
    backend: StrictStr
    max_runtime: Seconds | None  # None: the system's backend limit


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
    remove_reservation: NotRequired[StrictStr]
    put_allocation: NotRequired[alloc.PutAllocationSpec]
    set_share: NotRequired[ShareSpec]
    backend_max_runtime: NotRequired[MaxRuntimeSpec]


@with_config(ConfigDict(extra="ignore"))
class ScenarioSpec(TypedDict):
    settings: NotRequired[SettingsSpec]
    backends: list[BackendSpec]
    shares: NotRequired[dict[str, Seconds]]
    usage: NotRequired[dict[Instance, Seconds]]
    reservations: NotRequired[list[ReservationSpec]]
    events: NotRequired[list[EventSpec]]
    until: NotRequired[Time]
    allocations: NotRequired[list[alloc.AllocationSpec]]


SCENARIO = TypeAdapter(ScenarioSpec)


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
    allocations: list[m.Allocation] = field(default_factory=list)  # set before time starts


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
    try:
        return _build(spec)
    except alloc.BadAllocation as error:
        raise ScenarioError(str(error)) from None


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
    settings = settings_in_ticks(spec.get("settings", {}))  # type: ignore[arg-type]
    order = sorted(range(len(events)), key=lambda i: events[i]["at"])  # stable: file order kept
    return Scenario(
        settings=settings,
        backends=[
            m.Backend(
                name=b["name"],
                status=b.get("status", m.ONLINE),
                max_runtime=maybe_seconds_ticks(b.get("max_runtime")),
            )
            for b in spec["backends"]
        ],
        shares=dict(spec.get("shares", {})),
        usage={instance: seconds_ticks(used) for instance, used in spec.get("usage", {}).items()},
        reservations=[
            m.Reservation(
                id=r["id"],
                backend=r["backend"],
                instance=r["instance"],
                start=seconds_ticks(r["start"]),
                end=seconds_ticks(r["end"]),
                exclusive=r.get("exclusive", False),
            )
            for r in reservations
        ],
        events=[(seconds_ticks(events[i]["at"]), actions[i]) for i in order],
        instances=_named_instances(spec, actions),
        until=maybe_seconds_ticks(spec.get("until")),
        failures={
            e["submit"]["job"]: fails
            for e in events
            if "submit" in e and (fails := e["submit"].get("fails"))
        },
        allocations=alloc.initial_allocations(spec.get("allocations", []), seconds_ticks),
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
    names.update(dict.fromkeys(alloc.named_instances(spec.get("allocations", []), actions)))
    return list(names)


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
            duration=maybe_seconds_ticks(s["duration"]),
            session=session,
            start_session=s.get("start_session", False),
            max_execution_time=maybe_seconds_ticks(s.get("max_execution_time")),
            mode=s.get("mode", m.DEDICATED),
            expected=maybe_seconds_ticks(s.get("expected")),
        )
    if "create_session" in event:
        c = event["create_session"]
        _known_backend(backends, c["backend"], f"events[{i}].create_session.backend")
        return m.CreateSession(
            session=c["session"],
            instance=c["instance"],
            backend=c["backend"],
            max_ttl=maybe_seconds_ticks(c.get("max_ttl")),
            mode=c.get("mode", m.DEDICATED),
        )
    if "backend_status" in event:
        b = event["backend_status"]
        _known_backend(backends, b["backend"], f"events[{i}].backend_status.backend")
        return m.SetBackendStatus(b["backend"], b["status"])
    if "put_allocation" in event:
        where = f"events[{i}].put_allocation"
        return alloc.put_allocation(event["put_allocation"], seconds_ticks, where)
    if "set_share" in event:
        return m.SetShare(event["set_share"]["node"], event["set_share"]["share"])
    if "backend_max_runtime" in event:
        limit = event["backend_max_runtime"]
        _known_backend(backends, limit["backend"], f"events[{i}].backend_max_runtime.backend")
        return m.PutBackend(limit["backend"], maybe_seconds_ticks(limit["max_runtime"]))
    if "put_reservation" in event:
        r = event["put_reservation"]
        _known_backend(backends, r["backend"], f"events[{i}].put_reservation.backend")
        if r["end"] <= r["start"]:
            raise ScenarioError(f"events[{i}].put_reservation.end: must be after start")
        return m.PutReservation(
            r["backend"],
            r["instance"],
            r["id"],
            seconds_ticks(r["start"]),
            seconds_ticks(r["end"]),
            r.get("exclusive", False),
        )
    name = event[kind]  # type: ignore[literal-required]
    if kind == "cancel_job":
        return m.CancelJob(name)
    if kind == "remove_reservation":
        return m.RemoveReservation(name)
    return m.CloseSession(name) if kind == "close_session" else m.CancelSession(name)


def _known_backend(backends: set[str], name: str, where: str) -> None:
    if name not in backends:
        raise ScenarioError(f"{where}: unknown backend {name!r}")
