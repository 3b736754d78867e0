"""The usage report: its rows equal a raw computation; the page, its CSV and the
command agree; researchers see their own instances; bad input is refused."""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from scheduler.history import rollups, waits
from scheduler.history.report import period_of, usage_report
from scheduler.policy import model as m
from tests.factories import UserFactory
from tests.history.data import DAY0, PATHS, Raw, at, history

pytestmark = pytest.mark.django_db
DAYS = 4
NOW = at(DAY0 + timedelta(days=DAYS), 3600)
SPAN = {"since": DAY0.isoformat(), "until": (DAY0 + timedelta(days=DAYS - 1)).isoformat()}


def raw_report(raws: list[Raw], by: str) -> dict[tuple[str, str], tuple]:
    rows: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"run": 0, "hold": 0, m.COMPLETED: 0, m.FAILED: 0, m.CANCELLED: 0, "w": []}
    )
    for r in raws:
        row = rows[(period_of(r.day, by).isoformat(), r.instance)]
        row["run"] += r.run_us
        row["hold"] += r.hold_us
        if r.status:
            row[r.status] += 1
        if r.wait is not None:
            row["w"].append(r.wait)
    out = {}
    for key, row in rows.items():
        counts = waits.new()
        waits.merge(counts, waits.histogram(row["w"]))
        out[key] = (
            row["run"],
            row["hold"],
            row[m.COMPLETED],
            row[m.FAILED],
            row[m.CANCELLED],
            waits.percentile(counts, 50),
            waits.percentile(counts, 95),
        )
    return out


def as_tuples(report: Any) -> dict[tuple[str, str], tuple]:
    return {
        (row.period.isoformat(), row.instance): (
            row.run_us,
            row.hold_us,
            row.completed,
            row.failed,
            row.cancelled,
            row.wait_p50,
            row.wait_p95,
        )
        for row in report.rows
    }


@pytest.mark.parametrize("by", ["day", "week"])
def test_rows_equal_the_raw_computation_rolled_up_or_live(by: str) -> None:
    raws = history(days=DAYS)
    span = {"since": DAY0, "until": DAY0 + timedelta(days=DAYS - 1), "by": by, "now": NOW}
    live = usage_report(**span)
    assert live.live_days == DAYS
    rollups.roll(NOW)
    rolled = usage_report(**span)
    assert rolled.live_days == 0
    assert as_tuples(rolled) == as_tuples(live) == raw_report(raws, by)
    if by == "week":  # DAY0 is a Saturday: two weeks
        assert {row.period for row in rolled.rows} == {
            DAY0 - timedelta(days=5),
            DAY0 + timedelta(days=2),
        }


def test_a_partly_rolled_span_adds_the_live_days_to_the_rollups() -> None:
    raws = history(days=DAYS)
    rollups.roll(at(DAY0 + timedelta(days=2), 3600))  # two days rolled, two live
    report = usage_report(since=DAY0, until=DAY0 + timedelta(days=DAYS - 1), by="week", now=NOW)
    assert report.live_days == 2
    assert as_tuples(report) == raw_report(raws, "week")


@pytest.fixture
def staff_client(client: Client) -> Client:
    client.force_login(UserFactory(username="operator", is_staff=True))
    return client


@pytest.fixture
def rolled() -> list[Raw]:
    raws = history(days=DAYS)
    rollups.roll(NOW)
    return raws


@pytest.fixture
def researcher_client(client: Client, rolled: list[Raw]) -> Client:
    from scheduler import models

    user = UserFactory(username="alice")
    models.Instance.objects.get(path="hubA/g/p").members.add(user)
    client.force_login(user)
    return client


def test_the_page_the_csv_and_the_command_show_the_same_rows(staff_client: Client) -> None:
    history(days=DAYS)
    rollups.roll(NOW)
    page = staff_client.get("/usage", {**SPAN, "by": "day"})
    assert page.status_code == 200
    report = page.context["report"]
    assert {row.instance for row in report.rows} == set(PATHS)
    csv_answer = staff_client.get("/usage.csv", {**SPAN, "by": "day"})
    assert csv_answer.status_code == 200
    assert csv_answer["Content-Type"].startswith("text/csv")
    text = csv_answer.content.decode()
    assert text == report.csv()
    assert len(text.splitlines()) == len(report.rows) + 1
    out, err = io.StringIO(), io.StringIO()
    call_command("usage_report", "--csv", "--by", "day", *_span_args(), stdout=out, stderr=err)
    assert out.getvalue() == text
    assert err.getvalue().startswith(f"{len(report.rows)} rows, 3 instances")
    table = io.StringIO()
    call_command("usage_report", "--by", "day", *_span_args(), stdout=table)
    lines = table.getvalue().splitlines()
    assert lines[0].split()[:2] == ["Period", "Instance"]
    body = [line.split() for line in lines[2:-1]]
    assert body == [[cell for cell in row.cells() if cell] for row in report.rows]
    assert lines[-1].startswith(report.summary())
    # the page's chart stacks one trace per instance over the same periods
    chart = page.context["chart"]
    assert sorted(chart["series"]) == sorted(PATHS)
    assert chart["periods"] == [p.isoformat() for p in report.periods]


def _span_args() -> list[str]:
    return ["--since", SPAN["since"], "--until", SPAN["until"]]


def test_a_researcher_sees_only_their_own_instances(researcher_client: Client) -> None:
    page = researcher_client.get("/usage", SPAN)
    assert page.status_code == 200
    assert {row.instance for row in page.context["report"].rows} == {"hubA/g/p"}
    assert b"hubB/g/p" not in page.content and b"hubA/g/q" not in page.content
    csv_text = researcher_client.get("/usage.csv", SPAN).content.decode()
    assert "hubB" not in csv_text and "hubA/g/q" not in csv_text and "hubA/g/p" in csv_text
    for other in ("hubB/g/p", "hubA/g/q", "no/such/instance"):
        assert researcher_client.get("/usage", {**SPAN, "instance": other}).status_code == 404
        assert researcher_client.get("/usage.csv", {**SPAN, "instance": other}).status_code == 404
    own = researcher_client.get("/usage", {**SPAN, "instance": "hubA/g/p"})
    assert own.status_code == 200


def test_anonymous_visitors_are_sent_to_log_in(client: Client) -> None:
    for url in ("/usage", "/usage.csv"):
        answer = client.get(url)
        assert answer.status_code == 302 and "/login/" in answer["Location"]


@pytest.mark.parametrize(
    "query",
    [
        {"since": "2030-03-05", "until": "2030-03-01"},
        {"since": "2030-02-30"},
        {"until": "yesterday"},
        {"by": "month"},
        {"since": "1900-01-01", "until": "2030-01-01"},
    ],
)
def test_bad_input_is_a_form_error_and_a_400(staff_client: Client, query: dict[str, str]) -> None:
    page = staff_client.get("/usage", query)
    assert page.status_code == 400
    assert page.context["report"] is None and page.context["form"].errors
    assert staff_client.get("/usage.csv", query).status_code == 400


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "2030-03-05", "--until", "2030-03-01"], "is after until"),
        (["--since", "2030-02-30"], "is not a day"),
        (["--by", "month"], "--by must be day or week"),
        (["--instance", "no/such/one"], "no instance"),
    ],
)
def test_bad_command_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("usage_report", *args, stdout=io.StringIO(), stderr=err)
    assert exit_.value.code == 2
    assert message in err.getvalue() and len(err.getvalue().strip().splitlines()) == 1
