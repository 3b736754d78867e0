"""`manage.py simulate`: traces of scenarios, and one-line errors for bad ones."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from scheduler.sim.memory import MemoryEngine
from scheduler.sim.run import simulate
from scheduler.sim.scenario import parse_scenario

SHARED = Path(__file__).resolve().parents[3] / "shared"
EXAMPLES = sorted(
    p for p in (SHARED / "scenarios").glob("*.json") if not p.name.endswith(".expect.json")
)
MANAGE = Path(__file__).resolve().parents[2] / "manage.py"


def run_simulate(tmp_path: Path, scenario: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "trace.json"
    call_command("simulate", str(scenario), "--out", str(out), *args, stderr=StringIO())
    return json.loads(out.read_text())


def write(tmp_path: Path, document: Any, name: str = "scenario.json") -> Path:
    path = tmp_path / name
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def mismatches(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """Every place where `actual` differs from the partial trace `expected`."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        return [
            problem
            for key, value in expected.items()
            for problem in (
                mismatches(value, actual[key], f"{where}.{key}")
                if key in actual
                else [f"{where}.{key}: missing"]
            )
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {expected!r}, got {actual!r}"]
        return [
            p
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for p in mismatches(e, a, f"{where}[{i}]")
        ]
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        ok = isinstance(actual, int | float) and abs(expected - actual) <= 1e-6
        return [] if ok else [f"{where}: expected {expected!r}, got {actual!r}"]
    return [] if expected == actual else [f"{where}: expected {expected!r}, got {actual!r}"]


def at_submit(
    at: float, job: str, instance: str, backend: str, duration: float, **fields: Any
) -> dict[str, Any]:
    """A scenario `submit` event."""
    spec = {"job": job, "instance": instance, "backend": backend, "duration": duration}
    return {"at": at, "submit": {**spec, **fields}}


def at_create(
    at: float, session: str, instance: str, backend: str, **fields: Any
) -> dict[str, Any]:
    """A scenario `create_session` event."""
    spec = {"session": session, "instance": instance, "backend": backend}
    return {"at": at, "create_session": {**spec, **fields}}


def at_status(at: float, backend: str, status: str) -> dict[str, Any]:
    return {"at": at, "backend_status": {"backend": backend, "status": status}}


# A scenario with every kind of event (docs/simulate.md), with its whole trace.
EXAMPLE = {
    "settings": {"interactive_ttl": 60},
    "backends": [{"name": "sim_a"}, {"name": "sim_b", "status": "paused"}],
    "shares": {"hubA": 1, "hubA/g2": 3},
    "usage": {"hubA/g2/p": 300},
    "reservations": [
        {"id": "r1", "backend": "sim_a", "instance": "hubR/g/p", "start": 50, "end": 200}
    ],
    "events": [
        at_submit(0, "j1", "hubA/g1/p", "sim_a", 60),
        at_submit(
            0,
            "j2",
            "hubA/g1/p",
            "sim_a",
            10,
            start_session=True,
            session="s1",
            max_execution_time=600,
        ),
        at_create(1, "s2", "hubB/g/p", "sim_a", max_ttl=900),
        at_submit(5, "j3", "hubA/g1/p", "sim_a", 10, session="s1"),
        {"at": 40, "cancel_job": "j3"},
        {"at": 50, "close_session": "s1"},
        {"at": 60, "cancel_session": "s2"},
        at_status(70, "sim_b", "online"),
        at_submit(80, "j4", "hubA/g1/p", "sim_a", 10, session="s1"),
    ],
}


def job(
    status: str,
    session: str | None,
    lane: str | None,
    submitted: float,
    started: float | None,
    ended: float | None,
    error: str | None = None,
) -> dict[str, Any]:
    """One job of a trace on backend sim_a."""
    return {
        "status": status,
        "backend": "sim_a",
        "session": session,
        "lane": lane,
        "submitted_at": submitted,
        "started_at": started,
        "ended_at": ended,
        "error": error,
    }


EXAMPLE_TRACE = {
    "jobs": {
        "j1": job("Completed", None, "fair_share", 0, 0, 60),
        "j2": job("Completed", "s1", "fair_share", 0, 60, 70),
        "j3": job("Cancelled", "s1", None, 5, None, 40),
        "j4": job("Rejected", "s1", None, 80, None, None, "session_closed"),
    },
    "sessions": {
        "s1": {
            "backend": "sim_a",
            "instance": "hubA/g1/p",
            "state": "closed",
            "closed_reason": "closed",
            "history": [[0, "open"], [60, "active"], [70, "closed"]],
        },
        "s2": {
            "backend": "sim_a",
            "instance": "hubB/g/p",
            "state": "closed",
            "closed_reason": "cancelled",
            "history": [[1, "open"], [60, "closed"]],
        },
    },
    "starts": {"sim_a": [[0, "j1"], [60, "j2"]], "sim_b": []},
    "usage": {"hubA/g1/p": 70, "hubA/g2/p": 300, "hubB/g/p": 0, "hubR/g/p": 0},
    "end_time": 200,
}


# Many rules at once, worked by hand: a paused backend inside an exclusive
# window, a bound session holding a non-exclusive window, refusals in order,
# an open timeout, fractional times, shares and prior usage.
A, B, C, R = "hubA/g/p", "hubB/g/p", "hubC/g/p", "hubR/g/p"
MIXED = {
    "settings": {
        "interactive_ttl": 20,
        "open_timeout": 100,
        "system_max_ttl": 300,
        "backend_max_runtime": 50,
    },
    "backends": [{"name": "a"}, {"name": "b"}],
    "shares": {"hubA": 2, "hubB/g": 0.5},
    "usage": {B: 40},
    "reservations": [
        {"id": "rx", "backend": "a", "instance": R, "start": 30, "end": 60, "exclusive": True},
        {"id": "ry", "backend": "b", "instance": R, "start": 30, "end": 90},
    ],
    "events": [
        at_submit(0, "a1", A, "a", 12.5, start_session=True, session="sA"),
        at_submit(0, "b1", B, "a", 8),
        at_submit(0, "b2", B, "b", 80),
        at_submit(1, "a2", A, "a", 5, session="sA"),
        at_create(2, "sR", R, "b", max_ttl=200),
        at_submit(3, "r1", R, "b", 10, session="sR"),
        at_submit(4, "r2", R, "a", 10),
        at_status(20, "a", "paused"),
        at_status(35, "a", "online"),
        {"at": 40, "cancel_job": "b2"},
        at_submit(41, "r3", R, "b", 10, session="sR"),
        at_submit(45, "c1", C, "b", 100, max_execution_time=30),
        at_submit(50, "bad1", C, "zz", 1),
        at_submit(50, "bad2", C, "a", 1, session="sR"),
        at_submit(51, "bad3", R, "a", 1, session="sR"),
        at_submit(52, "bad4", C, "b", 1, session="sR"),
        at_create(60, "sO", C, "a"),
        at_submit(95, "r4", R, "b", 10, session="sR"),
        {"at": 96, "close_session": "sA"},
        {"at": 97, "cancel_session": "sR"},
    ],
}

MIXED_TRACE = {
    "jobs": {
        "a1": {"status": "Completed", "lane": "fair_share", "started_at": 0, "ended_at": 12.5},
        "a2": {"status": "Completed", "lane": "session", "started_at": 12.5, "ended_at": 17.5},
        "r2": {"status": "Completed", "lane": "reservation", "started_at": 35, "ended_at": 45},
        "b1": {"status": "Completed", "lane": "fair_share", "started_at": 60, "ended_at": 68},
        "b2": {"status": "Cancelled", "started_at": 0, "ended_at": 40, "error": None},
        "r1": {"status": "Completed", "lane": "reservation", "started_at": 40, "ended_at": 50},
        "r3": {"status": "Completed", "lane": "reservation", "started_at": 50, "ended_at": 60},
        "c1": {
            "status": "Failed",
            "lane": "fair_share",
            "started_at": 80,
            "ended_at": 110,
            "error": "max_execution_time_exceeded",
        },
        "bad1": {"status": "Rejected", "error": "unknown_backend", "submitted_at": 50},
        "bad2": {"status": "Rejected", "error": "backend_mismatch"},
        "bad3": {"status": "Rejected", "error": "backend_mismatch"},
        "bad4": {"status": "Rejected", "error": "instance_mismatch"},
        "r4": {"status": "Rejected", "error": "session_closed"},
    },
    "sessions": {
        "sA": {
            "closed_reason": "closed",
            "history": [[0, "open"], [0, "active"], [37.5, "inactive"], [96, "closed"]],
        },
        "sR": {
            "closed_reason": "reservation_ended",
            "history": [[2, "open"], [40, "active"], [80, "inactive"], [90, "closed"]],
        },
        "sO": {"closed_reason": "open_timeout", "history": [[60, "open"], [160, "closed"]]},
    },
    "starts": {
        "a": [[0, "a1"], [12.5, "a2"], [35, "r2"], [60, "b1"]],
        "b": [[0, "b2"], [40, "r1"], [50, "r3"], [80, "c1"]],
    },
    "usage": {A: 20, B: 88, R: 50, C: 30},
    "end_time": 160,
}


def test_it_traces_a_scenario_mixing_many_rules(tmp_path: Path) -> None:
    trace = run_simulate(tmp_path, write(tmp_path, MIXED))

    assert mismatches(MIXED_TRACE, trace) == []


def test_end_time_ignores_a_cancelled_timer(tmp_path: Path) -> None:
    scenario = {
        "backends": [{"name": "a"}],
        "events": [
            at_create(0, "s", "h/g/p", "a"),
            {"at": 5, "close_session": "s"},
        ],
    }

    trace = run_simulate(tmp_path, write(tmp_path, scenario))

    assert trace["sessions"]["s"]["history"] == [[0, "open"], [5, "closed"]]
    assert trace["end_time"] == 5


def test_it_writes_the_documented_trace_of_the_example(tmp_path: Path) -> None:
    trace = run_simulate(tmp_path, write(tmp_path, EXAMPLE))

    assert trace == EXAMPLE_TRACE


@pytest.mark.parametrize("scenario", EXAMPLES, ids=lambda p: p.stem)
def test_it_reproduces_the_shared_example_scenarios(tmp_path: Path, scenario: Path) -> None:
    expected = json.loads(scenario.with_name(scenario.stem + ".expect.json").read_text())

    trace = run_simulate(tmp_path, scenario)

    assert mismatches(expected, trace) == []


def test_shared_example_scenarios_are_present() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"no shared scenarios at {SHARED}")
    assert EXAMPLES


def test_it_writes_fractional_times_as_seconds(tmp_path: Path) -> None:
    scenario = {
        "backends": [{"name": "a"}],
        "events": [at_submit(0.5, "j", "h/g/p", "a", 1.25)],
    }

    trace = run_simulate(tmp_path, write(tmp_path, scenario))

    assert trace["jobs"]["j"]["started_at"] == 0.5
    assert trace["jobs"]["j"]["ended_at"] == 1.75
    assert trace["end_time"] == 1.75


@pytest.mark.parametrize("given", [{}, {"interactive_ttl": 30}])
def test_a_batch_session_has_its_own_one_second_interactive_timeout_by_default(
    tmp_path: Path, given: dict[str, float]
) -> None:
    batch = {"start_session": True, "session": "b", "mode": "batch"}
    scenario = {
        "settings": given,
        "backends": [{"name": "a"}],
        "events": [at_submit(0, "j", "h/g/p", "a", 10, **batch)],
    }

    trace = run_simulate(tmp_path, write(tmp_path, scenario))

    assert trace["sessions"]["b"]["history"][:3] == [[0, "open"], [0, "active"], [11, "inactive"]]


def test_unsorted_events_apply_by_time_then_file_order(tmp_path: Path) -> None:
    scenario = {
        "backends": [{"name": "a"}],
        "events": [
            at_submit(5, "late", "h/g/p", "a", 10),
            at_submit(0, "first", "h/g/p", "a", 10),
            at_submit(0, "second", "h/g/p", "a", 10),
        ],
    }

    trace = run_simulate(tmp_path, write(tmp_path, scenario))

    assert trace["starts"]["a"] == [[0, "first"], [10, "second"], [20, "late"]]


# A submit naming an unknown backend or session is a refused job, not a bad file.
@pytest.mark.parametrize(
    ("fields", "error"),
    [
        pytest.param({"backend": "nope"}, "unknown_backend", id="unknown_backend"),
        pytest.param({"session": "nope"}, "unknown_session", id="unknown_session"),
    ],
)
def test_submit_to_unknown_backend_or_session_is_rejected_not_bad(
    tmp_path: Path, fields: dict[str, str], error: str
) -> None:
    event = at_submit(3, "j", "h/g/p", "a", 10)
    event["submit"].update(fields)
    scenario = {"backends": [{"name": "a"}], "events": [event]}

    trace = run_simulate(tmp_path, write(tmp_path, scenario))

    assert trace["jobs"]["j"]["status"] == "Rejected"
    assert trace["jobs"]["j"]["error"] == error
    assert trace["jobs"]["j"]["submitted_at"] == 3
    assert trace["end_time"] == 3


def test_cancels_and_closes_of_unknown_names_do_nothing_but_count_for_end_time(
    tmp_path: Path,
) -> None:
    scenario = {
        "backends": [{"name": "a"}],
        "events": [
            at_submit(0, "j", "h/g/p", "a", 10),
            {"at": 30, "cancel_job": "ghost"},
            {"at": 40, "close_session": "ghost"},
            {"at": 50, "cancel_session": "ghost"},
        ],
    }

    trace = run_simulate(tmp_path, write(tmp_path, scenario))

    assert trace["jobs"]["j"]["status"] == "Completed"
    assert trace["end_time"] == 50


# ------------------------------------------------------------ bad scenarios
def good() -> dict[str, Any]:
    """A valid scenario that each bad case breaks in one place."""
    return {
        "backends": [{"name": "a"}, {"name": "b"}],
        "reservations": [{"id": "r1", "backend": "a", "instance": "h/g/p", "start": 10, "end": 20}],
        "events": [at_create(0, "s", "h/g/p", "a"), at_submit(1, "j", "h/g/p", "a", 5)],
    }


def broken(change: Any) -> dict[str, Any]:
    document = good()
    change(document)
    return document


def _add_event(event: dict[str, Any]) -> Any:
    return lambda d: d["events"].append(event)


BAD: list[Any] = [
    pytest.param(
        broken(lambda d: d["events"][1]["submit"].pop("duration")),
        "events[1].submit.duration",
        id="missing_field",
    ),
    pytest.param(broken(lambda d: d.pop("backends")), "backends", id="missing_backends"),
    pytest.param(
        broken(lambda d: d["events"][1]["submit"].update(duration="5")),
        "events[1].submit.duration",
        id="string_duration",
    ),
    pytest.param(broken(lambda d: d["events"][1].update(at=True)), "events[1].at", id="boolean_at"),
    pytest.param(broken(lambda d: d["events"][1].update(at=-1)), "events[1].at", id="negative_at"),
    pytest.param(
        broken(lambda d: d["events"][1]["submit"].update(instance="flat")),
        "events[1].submit.instance",
        id="instance_not_hub_group_project",
    ),
    pytest.param(
        broken(lambda d: d["reservations"][0].update(exclusive="yes")),
        "reservations[0].exclusive",
        id="string_exclusive",
    ),
    pytest.param(
        broken(lambda d: d["backends"][1].update(status="broken")),
        "backends[1].status",
        id="unknown_backend_status",
    ),
    pytest.param(
        broken(_add_event({"at": 2, "explode": {"job": "j"}})),
        "events[2]",
        id="unknown_event_kind",
    ),
    pytest.param(
        broken(_add_event({"at": 2})),
        "events[2]",
        id="event_without_kind",
    ),
    pytest.param(
        broken(_add_event(at_submit(2, "j", "h/g/p", "a", 1))),
        "events[2].submit.job",
        id="duplicate_job_name",
    ),
    pytest.param(
        broken(_add_event(at_create(2, "s", "h/g/p", "a"))),
        "events[2].create_session.session",
        id="duplicate_session_name",
    ),
    pytest.param(
        broken(_add_event(at_submit(2, "j2", "h/g/p", "a", 1, start_session=True, session="s"))),
        "events[2].submit.session",
        id="duplicate_session_name_by_start_session",
    ),
    pytest.param(
        broken(_add_event(at_create(2, "t", "h/g/p", "zz"))),
        "events[2].create_session.backend",
        id="create_session_on_unknown_backend",
    ),
    pytest.param(
        broken(_add_event(at_status(2, "zz", "paused"))),
        "events[2].backend_status.backend",
        id="backend_status_of_unknown_backend",
    ),
    pytest.param(
        broken(lambda d: d["reservations"][0].update(backend="zz")),
        "reservations[0].backend",
        id="reservation_on_unknown_backend",
    ),
    pytest.param(
        broken(
            lambda d: d["reservations"].append(
                {"id": "r2", "backend": "a", "instance": "x/y/z", "start": 15, "end": 30}
            )
        ),
        "reservations[1]",
        id="overlapping_reservations",
    ),
    pytest.param(
        broken(lambda d: d["reservations"][0].update(end=10)),
        "reservations[0]",
        id="reservation_end_equal_to_start",
    ),
    pytest.param(
        broken(lambda d: d["reservations"][0].update(end=5)),
        "reservations[0]",
        id="reservation_end_before_start",
    ),
    pytest.param('{"backends": [', "json", id="invalid_json"),
    pytest.param("[]", "scenario", id="not_an_object"),
]


def assert_bad(stderr: str, field: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert field.lower() in lines[0].lower(), lines[0]


@pytest.mark.parametrize(("document", "field"), BAD)
def test_bad_scenario_exits_2_with_one_line_naming_the_field(
    tmp_path: Path, document: Any, field: str
) -> None:
    stderr = StringIO()
    out = tmp_path / "trace.json"

    with pytest.raises(SystemExit) as exit_info:
        call_command("simulate", str(write(tmp_path, document)), "--out", str(out), stderr=stderr)

    assert exit_info.value.code == 2
    assert_bad(stderr.getvalue(), field)
    assert not out.exists()


def test_missing_scenario_file_exits_2_naming_the_file(tmp_path: Path) -> None:
    stderr = StringIO()
    missing = tmp_path / "nowhere.json"

    with pytest.raises(SystemExit) as exit_info:
        call_command("simulate", str(missing), "--out", str(tmp_path / "t.json"), stderr=stderr)

    assert exit_info.value.code == 2
    assert_bad(stderr.getvalue(), "nowhere.json")


def test_bad_scenario_process_exit_status_is_2(tmp_path: Path) -> None:
    bad = write(tmp_path, broken(lambda d: d["events"][1]["submit"].pop("duration")))

    result = subprocess.run(
        [sys.executable, str(MANAGE), "simulate", str(bad), "--out", str(tmp_path / "t.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert_bad(result.stderr, "events[1].submit.duration")


# --------------------------------------------------------------- db engine
def db_cases() -> list[Any]:
    cases = [
        pytest.param(json.dumps(EXAMPLE), id="documented_example"),
        pytest.param(json.dumps(MIXED), id="mixed_rules"),
    ]
    cases += [pytest.param(p.read_text(), id=p.stem) for p in EXAMPLES]
    return cases


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("document", db_cases())
def test_db_engine_gives_the_same_trace_as_memory_engine(document: str) -> None:
    from scheduler.sim.db import DbEngine

    scenario = parse_scenario(document)

    assert simulate(scenario, DbEngine(scenario)) == simulate(scenario, MemoryEngine(scenario))
