"""`manage.py whatif`: the page's comparison as tables or JSON; bad arguments exit 2."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.db import connections

from scheduler import models
from scheduler.clock import from_ticks
from scheduler.engine import eager
from scheduler.management.commands.whatif import Command
from scheduler.policy import model as m
from tests.factories import BackendFactory, instance

pytestmark = pytest.mark.django_db

NOW = from_ticks(1_800_000_000_000_000)


@pytest.fixture(autouse=True)
def world() -> None:
    BackendFactory(name="sim_kyiv")
    instance("hubX/gx/p")
    instance("hubY/gy/p")
    jobs = [
        m.Submit(job=f"{tag}{n}", instance=path, backend="sim_kyiv", duration=600_000_000)
        for n in range(3)
        for tag, path in (("x", "hubX/gx/p"), ("y", "hubY/gy/p"))
    ]
    eager.step(jobs, at=NOW - timedelta(minutes=1))


def whatif(*args: str) -> str:
    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("whatif", *args, stdout=out)
    return out.getvalue()


def test_it_prints_the_comparison_as_tables() -> None:
    out = whatif("--reservation", "sim_kyiv,hubY/gy/p,08:00,10:00,exclusive", "--hours", "2")
    assert "Add an exclusive window for hubY/gy/p on sim_kyiv" in out
    assert "Known now: 5 queued, 1 running" in out
    hub_x = next(line for line in out.splitlines() if line.startswith("hubX "))
    # hubY's window, open from now to 10:00, keeps hubX's jobs waiting until it ends.
    assert "2 → 1" in hub_x and "≥ 2h 01m" in hub_x
    kyiv = next(line for line in out.splitlines() if line.startswith("sim_kyiv"))
    assert "0s → 1h 21m" in kyiv  # idle in the exclusive window once hubY's jobs ran


def test_it_ends_with_a_summary_line_unless_quiet() -> None:
    last = whatif("--share", "hubX=4", "--hours", "2").rstrip().splitlines()[-1]
    assert last.startswith("6 known jobs and 0 arrivals over 2 h, both futures in ")
    quiet = whatif("--share", "hubX=4", "--hours", "2", "--quiet")
    assert "both futures in" not in quiet and "Set the share of hubX" in quiet


def test_json_for_scripts_is_deterministic_for_a_seed() -> None:
    args = ["--share", "hubX=4", "--load", "sim_kyiv,hubX/gx/p,20", "--seed", "5", "--json"]
    first, second = json.loads(whatif(*args)), json.loads(whatif(*args))
    first.pop("seconds"), second.pop("seconds")
    assert first == second
    assert first["changes"][0] == {
        "change": "share:hubX=4",
        "summary": "Set the share of hubX from 1 to 4",
    }
    assert first["synthetic_jobs"] > 0 and first["seed"] == 5
    nodes = {row["node"]: row for row in first["instances"]}
    assert nodes["hubX/gx/p"]["synthetic"]["with"]["waiting"] == first["synthetic_jobs"]
    assert set(first["attribution"]) == {"known", "synthetic"}


def test_an_allocation_keeps_a_hubs_jobs_waiting() -> None:
    # Each of hubX's three 600 s jobs: with 0 s, none starts in the horizon.
    out = whatif("--allocation", "hubX=0", "--hours", "1", "--json")
    first = json.loads(out)
    assert first["changes"][0]["summary"] == (
        "Give hubX an allocation of 0 s in the rolling window, queue (was none)"
    )
    nodes = {row["node"]: row for row in first["instances"]}
    assert nodes["hubX/gx/p"]["known"]["without"]["started"] > 0
    assert nodes["hubX/gx/p"]["known"]["with"]["started"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--allocation", "hubX=-1"], "the allocation must be between 0 and"),
        (["--reservation", "sim_kyiv,hubY/gy/p,08:00"], "expected BACKEND,INSTANCE,START,END"),
        (["--pause", "sim_nowhere"], "unknown backend 'sim_nowhere'"),
        (["--share", "hubX"], "expected PATH=VALUE"),
        (["--hours", "25"], "--hours must be more than 0 and at most 24"),
        (["--hours", "soon"], "--hours takes a number"),
        (["--seed", "-1"], "--seed must not be negative"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_arguments_give_one_line_and_status_2_and_change_nothing(
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connections, "close_all", lambda: None)  # the test's database stays
    events = models.Event.objects.count()
    with pytest.raises(SystemExit) as exit_code, time_machine.travel(NOW, tick=False):
        Command().run_from_argv(["manage.py", "whatif", *args])
    assert exit_code.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("whatif: ") and message in err and "\n" not in err
    assert models.Event.objects.count() == events
    assert not models.Reservation.objects.exists() and not models.Input.objects.exists()
