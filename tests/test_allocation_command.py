"""`manage.py allocation set|remove|list`: changes as inputs with an audit entry; bad
input is one line and exit status 2, and changes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command
from django.utils import timezone

from scheduler import models
from scheduler.management.commands.allocation import Command
from tests.factories import instance

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def tree() -> None:
    instance("ibm-q/research/qec")


def run(*args: str) -> str:
    out = StringIO()
    call_command("allocation", *args, stdout=out)
    return out.getvalue()


def counts() -> tuple[int, int, int, int]:
    return (
        models.Allocation.objects.count(),
        models.Input.objects.count(),
        models.Event.objects.count(),
        LogEntry.objects.count(),
    )


def test_it_sets_an_allocation_as_an_input_for_the_leader_with_an_audit_entry() -> None:
    output = run(
        "set",
        "ibm-q/research",
        "--seconds",
        "600",
        "--enforce",
        "safe",
        "--period-start",
        "2026-01-01T00:00:00+00:00",
        "--period-length",
        "86400",
    )

    assert output.strip() == "set ibm-q/research: 600 s, safe"
    row = models.Allocation.objects.get(instance__path="ibm-q/research")
    assert (row.seconds, row.enforce) == (600, "safe")
    assert row.period_start == datetime(2026, 1, 1, tzinfo=UTC)
    assert row.period_length == timedelta(days=1)
    change = models.Event.objects.get(kind="allocation_changed")  # the leader applied it
    start = 1_767_225_600_000_000  # 2026-01-01 in ticks
    assert change.detail == {
        "node": "ibm-q/research",
        "seconds": 600_000_000,
        "enforce": "safe",
        "period": [start, 86_400_000_000],
        "before": None,
    }
    entry = LogEntry.objects.get(additional_data__action="set allocation")
    assert entry.object_repr == "ibm-q/research"
    assert entry.additional_data["via"].startswith("manage.py allocation, run by ")
    assert entry.changes_dict["seconds"] == ["None", "600"]


def test_set_replaces_and_remove_removes() -> None:
    run("set", "ibm-q", "--seconds", "10")
    run("set", "ibm-q", "--seconds", "20", "--enforce", "refuse")
    assert models.Allocation.objects.get().seconds == 20

    assert run("remove", "ibm-q").strip() == "removed the allocation of ibm-q"
    assert not models.Allocation.objects.exists()
    events = models.Event.objects.filter(kind="allocation_changed").order_by("id")
    details = list(events.values_list("detail", flat=True))
    assert [d["seconds"] for d in details] == [10_000_000, 20_000_000, None]
    assert [d["before"] and d["before"]["seconds"] for d in details] == [
        None,
        10_000_000,
        20_000_000,
    ]


def test_list_shows_each_node_with_what_it_used_and_has_left() -> None:
    run("set", "ibm-q/research/qec", "--seconds", "600")
    models.UsageCharge.objects.create(
        instance=models.Instance.objects.get(path="ibm-q/research/qec"),
        kind="run",
        microseconds=612_000_000,
        ended_at=timezone.now() - timedelta(minutes=5),
    )

    table = run("list").splitlines()
    listed = json.loads(run("list", "--json"))

    assert table[0].split() == ["node", "seconds", "enforce", "period", "consumed", "left", "frees"]
    assert table[1].startswith("ibm-q/research/qec  600")
    assert " 612 " in table[1] and " 0 " in table[1]
    assert [(a["node"], a["consumed_seconds"], a["left_seconds"]) for a in listed] == [
        ("ibm-q/research/qec", 612.0, 0.0)
    ]
    assert listed[0]["exhausted"] is True and listed[0]["period"] == "rolling"
    frees = datetime.fromisoformat(listed[0]["frees"])
    assert frees - timezone.now() > timedelta(days=27)  # when the charge leaves the window


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["set", "ibm-q/nope", "--seconds", "5"], "No instance-tree node 'ibm-q/nope'"),
        (["set", "ibm-q", "--seconds", "-5"], "a number of seconds, 0 or more"),
        (["set", "ibm-q", "--seconds", "nan"], "a number of seconds, 0 or more"),
        (["set", "ibm-q", "--seconds", "5", "--period-start", "2026-01-01"], "needs a length"),
        (["set", "ibm-q", "--seconds", "5", "--period-length", "60"], "needs the start"),
        (
            [
                "set",
                "ibm-q",
                "--seconds",
                "5",
                "--period-start",
                "2026-01-01",
                "--period-length",
                "0",
            ],
            "must be positive",
        ),
        (
            ["set", "ibm-q", "--seconds", "5", "--period-start", "soon", "--period-length", "9"],
            "ISO",
        ),
        (["set", "ibm-q", "--seconds", "x"], "invalid float value: 'x'"),
        (["set", "ibm-q"], "--seconds"),
        (["set", "ibm-q", "--seconds", "5", "--enforce", "never"], "invalid choice: 'never'"),
        (["remove", "ibm-q"], "ibm-q has no allocation"),
        (["bogus"], "invalid choice: 'bogus'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_and_changes_nothing(
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run("set", "ibm-q/research", "--seconds", "60")
    before = counts()
    # As from a shell; the command closes its connections when done, not the test's.
    monkeypatch.setattr("django.core.management.base.connections.close_all", lambda: None)

    with pytest.raises(SystemExit) as exit_status:
        Command().run_from_argv(["manage.py", "allocation", *args])

    assert exit_status.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("allocation: ")
    assert message in err
    assert counts() == before
