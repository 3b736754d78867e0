"""The prediction against the live engine: a what-if taken at one instant, the change
then applied as the admin applies it, and the scheduler ticking on a fake clock with
nothing else arriving does exactly what the prediction said."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from scheduler import models
from scheduler.clock import maybe_from_ticks
from scheduler.policy import futures
from scheduler.policy import model as m
from scheduler.whatif import words
from scheduler.whatif.apply import whatif_apply
from scheduler.whatif.changes import parse_all
from scheduler.whatif.report import whatif_futures, whatif_run
from tests.factories import instance
from tests.test_live_rules import Live

pytestmark = pytest.mark.django_db


@pytest.fixture
def live(settings: Any) -> Live:
    settings.QDASH_EAGER_LEADER = False  # the scheduler under test applies every change
    settings.QDASH_APPLY_WAIT = 0  # and it runs in this thread: nobody to wait for
    return Live()


def predicted(changes: list[str], now: datetime, hours: float) -> tuple[Any, Any]:
    """The future with `changes` as the pure rules give it, and the page's report."""
    proposed = parse_all(changes, now=now)
    with_ = whatif_futures(changes=proposed, hours=hours, seed=0, now=now).with_
    return with_, whatif_run(changes=proposed, hours=hours, seed=0, now=now)


def starts(future: futures.Future) -> dict[str, tuple[datetime | None, datetime | None]]:
    """Each job's predicted start and end."""
    return {
        job.id: (maybe_from_ticks(job.started), maybe_from_ticks(job.ended)) for job in future.jobs
    }


def actual(uids: list[str]) -> dict[str, tuple[datetime | None, datetime | None]]:
    rows = models.Job.objects.filter(uid__in=uids)
    return {row.uid: (row.started_at, row.ended_at) for row in rows}


def test_a_window_that_binds_an_active_session_closes_it_at_the_end_as_predicted(
    live: Live,
) -> None:
    # A's window r0 until 45 lets T's job a1 in at 30, which makes S inactive with s2 queued.
    models.Reservation.objects.create(
        backend=models.Backend.objects.get(name="sim_a"),
        instance=instance("h/a/p"),
        start=live.at(0),
        end=live.at(45),
    )
    live.submit("s1", 30, inst="h/b/p", start_session=True, session="S")
    live.clock.set(live.at(1))
    live.submit("s2", 10, inst="h/b/p", session="S")
    live.clock.set(live.at(2))
    live.act(m.CreateSession(session="T", instance="h/a/p", backend="sim_a"))
    live.clock.set(live.at(3))
    live.submit("a1", 20, inst="h/a/p", session="T")
    live.run_until(5)
    assert models.Session.objects.get(uid="S").state == m.ACTIVE
    assert live.job("s1").status == m.RUNNING

    now = live.at(5)
    window = f"reservation:sim_a,h/b/p,{live.at(45).isoformat()},{live.at(200).isoformat()}"
    with_, report = predicted([window], now, hours=1)

    (fate,) = [row for row in report.sessions if row["session"] == "S"]
    assert fate["without"]["closed_reason"] is None and fate["without"]["bound"] is None
    assert fate["with"]["bound"] == "new-1" and fate["with"]["bound_at"] == live.at(50)
    assert fate["with"]["closed_reason"] == m.CLOSED_RESERVATION_ENDED
    assert fate["with"]["closed_at"] == live.at(200)
    assert "closed at window end" in words.fate(fate["with"])  # as the page says it
    assert words.fate(fate["without"]) == "runs on"

    whatif_apply(changes=parse_all([window], now=now), clock=live.clock)
    live.run_until(400)

    session = models.Session.objects.get(uid="S")
    assert session.closed_reason == m.CLOSED_RESERVATION_ENDED
    assert session.bound_reservation == models.Reservation.objects.get(start=live.at(45))
    closed = models.Event.objects.get(session=session, kind="session_state", detail__state="closed")
    assert closed.at == live.at(200)
    jobs = ["s1", "s2", "a1"]
    assert actual(jobs) == {uid: times for uid, times in starts(with_).items() if uid in jobs}


def test_a_share_change_reorders_the_fair_share_lane_as_predicted(live: Live) -> None:
    for path, used in (("h/a/p", 100), ("h/b/p", 200)):
        models.UsageCharge.objects.create(
            instance=instance(path),
            kind=models.UsageCharge.Kind.PRIOR,
            microseconds=used * 1_000_000,
            ended_at=live.at(-3600),
        )
    live.submit("x", 100, inst="h/c/p")
    live.clock.set(live.at(1))
    live.submit("a1", 10, inst="h/a/p")
    live.clock.set(live.at(2))
    live.submit("b1", 10, inst="h/b/p")
    live.run_until(50)

    now = live.at(50)
    with_, report = predicted(["share:h/b=4"], now, hours=1)
    rows = {row["node"]: row for row in report.nodes}
    assert rows["h/b/p"]["known"]["without"]["p50"] == 108  # b1 waits for a1: 2 -> 110
    assert rows["h/b/p"]["known"]["with"]["p50"] == 98  # b1 goes first: 2 -> 100
    assert rows["h/a/p"]["known"]["with"]["p50"] == 109  # a1 after it: 1 -> 110

    whatif_apply(changes=parse_all(["share:h/b=4"], now=now), clock=live.clock)
    live.run_until(300)

    assert live.job("b1").started_at == live.at(100) < live.job("a1").started_at
    assert actual(["x", "a1", "b1"]) == starts(with_)


def test_an_allocation_holds_back_a_job_as_predicted(live: Live) -> None:
    live.submit("a1", 30, inst="h/a/p")
    live.clock.set(live.at(1))
    live.submit("a2", 10, inst="h/a/p")
    live.submit("b1", 10, inst="h/b/p")
    live.run_until(5)

    now = live.at(5)
    start = live.at(0).isoformat()
    change = f"allocation:h/a=20,queue,{start},60"  # a1 ends at 30 over it: a2 waits for 60
    with_, report = predicted([change], now, hours=1)
    rows = {row["node"]: row for row in report.nodes}
    assert rows["h/a/p"]["known"]["with"]["p50"] > rows["h/a/p"]["known"]["without"]["p50"]

    whatif_apply(changes=parse_all([change], now=now), clock=live.clock)
    live.run_until(300)

    assert live.job("a2").started_at == live.at(60)  # the next period begins
    assert actual(["a1", "a2", "b1"]) == starts(with_)
