"""Feedback from `simulate`: the summary line and tables agree with the trace; progress
shows on a terminal only, and never with --quiet."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from scheduler import progress
from scheduler.sim import summary

SCENARIO = {
    "backends": [{"name": "sim_a"}, {"name": "sim_b"}],
    "events": [
        {"at": 0, "submit": {"job": "j1", "instance": "h/g/p", "backend": "sim_a", "duration": 60}},
        {
            "at": 0,
            "submit": {
                "job": "j2",
                "instance": "h/g/q",
                "backend": "sim_a",
                "duration": 10,
                "start_session": True,
                "session": "s1",
            },
        },
        {"at": 5, "submit": {"job": "j3", "instance": "h/g/q", "backend": "sim_b", "duration": 30}},
        {"at": 7, "submit": {"job": "j4", "instance": "h/g/p", "backend": "nope", "duration": 3}},
        {"at": 9, "cancel_job": "j3"},
    ],
}


class Terminal(io.StringIO):
    """Stands for a terminal on stderr."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(SCENARIO))
    return path


@pytest.fixture
def eager_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bar from the first event on, as a long run would show one."""
    monkeypatch.setattr(progress, "DELAY", 0.0)
    monkeypatch.setattr(progress, "EVERY", 1)


def simulate(scenario: Path, tmp_path: Path, *flags: str) -> tuple[str, dict[str, Any]]:
    out = io.StringIO()
    trace_path = tmp_path / "trace.json"
    call_command("simulate", str(scenario), "--out", str(trace_path), *flags, stdout=out)
    return out.getvalue(), json.loads(trace_path.read_text())


def test_the_summary_line_counts_what_the_trace_holds(scenario: Path, tmp_path: Path) -> None:
    printed, trace = simulate(scenario, tmp_path)
    line = printed.splitlines()[0]
    statuses = [job["status"] for job in trace["jobs"].values()]
    expected = (
        f"{len(statuses)} jobs: {statuses.count('Completed')} Completed, "
        f"{statuses.count('Failed')} Failed, {statuses.count('Cancelled')} Cancelled, "
        f"{statuses.count('Rejected')} Rejected; {len(trace['sessions'])} session; "
    )
    assert line.startswith(expected)
    assert line.startswith("4 jobs: 2 Completed, 0 Failed, 1 Cancelled, 1 Rejected; 1 session;")
    assert re.search(r"simulated 08:01:00 in \d+\.\d s \([\d,]+ jobs/s\)", line)
    assert trace["end_time"] == 8 * 3600 + 60  # the session's max TTL fires last
    assert line.endswith(f"trace written to {tmp_path / 'trace.json'}")


def test_the_summary_tables_are_computed_from_the_trace(scenario: Path, tmp_path: Path) -> None:
    printed, trace = simulate(scenario, tmp_path, "--summary")
    cells = [line.split() for line in printed.splitlines()[1:]]
    rows = {row[0]: row[1:] for row in cells if row and row[0] not in ("backend", "instance")}
    # sim_a ran j1 (0-60) and j2 (60-70): busy 70 s of 28,860; waits 0 and 60 s.
    assert rows["sim_a"] == ["2", f"{100 * 70 / 28_860:.1f}", "0.0", "60.0"]
    assert rows["sim_b"] == ["1", "0.0", "0.0", "0.0"]  # j3 ran 4 s before its cancel
    assert rows["h/g/p"] == ["2", "1", "60.0", "0.0", "0.0"]  # j4 was refused
    assert rows["h/g/q"] == ["2", "2", f"{trace['usage']['h/g/q']:.1f}", "0.0", "60.0"]


def test_quiet_prints_nothing(
    scenario: Path, tmp_path: Path, eager_bar: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    printed, _ = simulate(scenario, tmp_path, "--quiet")
    assert printed == "" and terminal.getvalue() == ""


def test_no_progress_when_stderr_is_not_a_terminal(
    scenario: Path, tmp_path: Path, eager_bar: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    printed, _ = simulate(scenario, tmp_path)
    assert pipe.getvalue() == ""
    assert printed.startswith("4 jobs:")


def test_a_terminal_sees_the_progress_bar(
    scenario: Path, tmp_path: Path, eager_bar: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    simulate(scenario, tmp_path)
    drawn = terminal.getvalue()
    assert "simulating" in drawn and "5/5" in drawn


def test_a_quick_run_draws_no_bar_even_on_a_terminal(
    scenario: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    simulate(scenario, tmp_path)  # far quicker than the one-second delay
    assert terminal.getvalue() == ""


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "00:00:00"), (3599.6, "01:00:00"), (86_400, "1 d 00:00:00"), (356_400, "4 d 03:00:00")],
)
def test_durations_read_as_clock_times_with_days_in_front(seconds: float, shown: str) -> None:
    assert progress.duration(seconds) == shown


def test_percentiles_are_nearest_rank() -> None:
    assert summary.percentile([], 0.5) is None
    assert summary.percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert summary.percentile(list(map(float, range(1, 101))), 0.95) == 95.0
