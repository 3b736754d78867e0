"""`manage.py simulate` with allocations (DESIGN.md 2.8): the example scenarios under
tests/scenarios/, and one-line errors for bad allocations."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from tests.policy.reference import simulate_reference
from tests.policy.test_differential import differences

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
EXAMPLES = sorted(p for p in SCENARIOS.glob("allocation_*.json") if ".expect." not in p.name)


def run_simulate(tmp_path: Path, scenario: Path) -> dict[str, Any]:
    out = tmp_path / "trace.json"
    call_command("simulate", str(scenario), "--out", str(out), stderr=StringIO())
    return json.loads(out.read_text())


def test_allocation_examples_are_present() -> None:
    assert len(EXAMPLES) == 4


@pytest.mark.parametrize("scenario", EXAMPLES, ids=lambda p: p.stem)
def test_it_reproduces_the_allocation_examples(tmp_path: Path, scenario: Path) -> None:
    expected = json.loads(scenario.with_name(scenario.stem + ".expect.json").read_text())
    trace = run_simulate(tmp_path, scenario)
    assert list(differences(expected, trace, partial=True)) == []


@pytest.mark.parametrize("scenario", EXAMPLES, ids=lambda p: p.stem)
def test_the_reference_gives_the_same_whole_trace(tmp_path: Path, scenario: Path) -> None:
    trace = run_simulate(tmp_path, scenario)
    assert list(differences(simulate_reference(json.loads(scenario.read_text())), trace)) == []


def test_a_refused_create_session_leaves_no_session_and_later_events_meet_unknown_session(
    tmp_path: Path,
) -> None:
    trace = run_simulate(tmp_path, SCENARIOS / "allocation_refuse.json")
    assert trace["sessions"] == {}
    assert trace["jobs"]["r4"]["error"] == "unknown_session"


# ------------------------------------------------------------------ bad input
BASE: dict[str, Any] = {
    "backends": [{"name": "a"}],
    "allocations": [{"instance": "h/g", "seconds": 10}],
    "events": [
        {"at": 0, "submit": {"job": "j", "instance": "h/g/p", "backend": "a", "duration": 1}},
        {"at": 1, "put_allocation": {"instance": "h", "seconds": 5, "enforce": "safe"}},
    ],
}


def broken(change: Callable[[dict[str, Any]], Any]) -> str:
    document = json.loads(json.dumps(BASE))
    change(document)
    return json.dumps(document)


def _first(d: dict[str, Any]) -> dict[str, Any]:
    return d["allocations"][0]


def _put(d: dict[str, Any]) -> dict[str, Any]:
    return d["events"][1]["put_allocation"]


BAD: list[Any] = [
    pytest.param(
        broken(lambda d: _first(d).pop("seconds")), "allocations[0].seconds", id="no_seconds"
    ),
    pytest.param(
        broken(lambda d: _first(d).update(seconds=None)),
        "allocations[0].seconds",
        id="null_seconds",
    ),
    pytest.param(
        broken(lambda d: _first(d).update(seconds=-1)), "allocations[0].seconds", id="negative"
    ),
    pytest.param(
        broken(lambda d: _first(d).update(seconds="10")), "allocations[0].seconds", id="string"
    ),
    pytest.param(
        broken(lambda d: _first(d).pop("instance")), "allocations[0].instance", id="no_instance"
    ),
    pytest.param(
        broken(lambda d: _first(d).update(instance="h/g/p/x")),
        "allocations[0].instance",
        id="not_a_tree_node",
    ),
    pytest.param(
        broken(lambda d: _first(d).update(enforce="deny")),
        "allocations[0].enforce",
        id="unknown_enforce",
    ),
    pytest.param(
        broken(lambda d: _first(d).update(period={"start": 0})),
        "allocations[0].period.length",
        id="period_without_length",
    ),
    pytest.param(
        broken(lambda d: _first(d).update(period={"length": 10})),
        "allocations[0].period.start",
        id="period_without_start",
    ),
    pytest.param(
        broken(lambda d: _first(d).update(period={"start": 0, "length": 0})),
        "allocations[0].period.length",
        id="zero_length",
    ),
    pytest.param(
        broken(lambda d: _first(d).update(period={"start": 0, "length": -5})),
        "allocations[0].period.length",
        id="negative_length",
    ),
    pytest.param(
        broken(lambda d: _first(d).update(period={"start": 0, "length": 1e-9})),
        "allocations[0].period.length",
        id="length_below_a_microsecond",
    ),
    pytest.param(
        broken(lambda d: _first(d).update(period=10)), "allocations[0].period", id="period_number"
    ),
    pytest.param(
        broken(lambda d: d["allocations"].append({"instance": "h/g", "seconds": 1})),
        "allocations[1].instance",
        id="second_allocation_of_a_node",
    ),
    pytest.param(broken(lambda d: d.update(allocations={})), "allocations", id="not_a_list"),
    pytest.param(
        broken(lambda d: _put(d).pop("seconds")),
        "events[1].put_allocation.seconds",
        id="event_without_seconds",
    ),
    pytest.param(
        broken(lambda d: _put(d).update(seconds=-3)),
        "events[1].put_allocation.seconds",
        id="event_negative_seconds",
    ),
    pytest.param(
        broken(lambda d: _put(d).update(enforce="maybe")),
        "events[1].put_allocation.enforce",
        id="event_unknown_enforce",
    ),
    pytest.param(
        broken(lambda d: _put(d).update(period={"start": 5})),
        "events[1].put_allocation.period.length",
        id="event_period_without_length",
    ),
    pytest.param(
        broken(lambda d: _put(d).update(period={"start": 5, "length": 1e-9})),
        "events[1].put_allocation.period.length",
        id="event_length_below_a_microsecond",
    ),
    pytest.param(
        broken(lambda d: _put(d).pop("instance")),
        "events[1].put_allocation.instance",
        id="event_without_instance",
    ),
]


@pytest.mark.parametrize(("document", "field"), BAD)
def test_bad_allocation_exits_2_with_one_line_naming_the_field(
    tmp_path: Path, document: str, field: str
) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(document)
    out = tmp_path / "trace.json"
    stderr = StringIO()

    with pytest.raises(SystemExit) as exit_info:
        call_command("simulate", str(path), "--out", str(out), stderr=stderr)

    assert exit_info.value.code == 2
    lines = stderr.getvalue().strip().splitlines()
    assert len(lines) == 1, lines
    assert field.lower() in lines[0].lower(), lines[0]
    assert not out.exists()


def test_the_base_of_the_bad_cases_is_good(tmp_path: Path) -> None:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(BASE))
    trace = run_simulate(tmp_path, path)
    assert trace["jobs"]["j"]["status"] == "Completed"
    assert trace["usage"] == {"h/g/p": 1}


def test_an_allocation_of_zero_seconds_and_null_period_are_good(tmp_path: Path) -> None:
    document = broken(lambda d: _first(d).update(seconds=0, period=None, enforce="queue"))
    path = tmp_path / "scenario.json"
    path.write_text(document)
    trace = run_simulate(tmp_path, path)
    assert trace["jobs"]["j"]["status"] == "Queued"  # h/g has 0 s: j waits for ever
    assert trace["end_time"] == 1
