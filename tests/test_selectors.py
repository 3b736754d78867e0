"""Reads behind the dashboard's charts: queue flow from the leader's samples, the timeline."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone

from scheduler import engine, inputs, models, selectors
from scheduler.clock import to_ticks
from scheduler.policy import model as m
from tests.factories import UserFactory, queue_job, record, two_hubs

pytestmark = pytest.mark.django_db
Kind = models.Input.Kind


class Driver:
    """One leader stepping at every due instant, as the live scheduler does."""

    def __init__(self) -> None:
        self.leader = engine.Leader()

    def run_until(self, at: datetime) -> None:
        end = to_ticks(at)
        while (due := self.leader.next_due()) is not None and due < end:
            self.leader.step(due)
        self.leader.step(end)

    def submit(
        self, uid: str, *, inst: str, at: datetime, seconds: float = 2, **extra: Any
    ) -> None:
        self.run_until(at)
        queue_job(uid, inst=inst, at=at, duration=seconds, **extra)
        self.leader.step(to_ticks(at))

    def act(self, action: m.Action, at: datetime) -> None:
        self.run_until(at)
        record(action, at=at)
        self.leader.step(to_ticks(at))


@pytest.fixture
def driver(settings: Any) -> Driver:
    settings.QDASH_EAGER_LEADER = False
    return Driver()


def live_bin(at: datetime) -> dict[str, Any]:
    """sim_a's live bin of the queue flow at `at`, as the dashboard computes it."""
    return selectors.flow_now(cards=selectors.backend_cards(names=["sim_a"]), now=at)["sim_a"]


@pytest.fixture
def backend() -> models.Backend:
    return two_hubs()


@pytest.fixture
def traffic(backend: models.Backend, driver: Driver) -> datetime:
    """Four jobs over two minutes on sim_a, from the start of a minute ten minutes ago.

    qj1 runs 0:05-1:05; qj2 waits behind it and starts at 1:05; qj3 opens a
    session at 1:10 (its first job comes through fair share) and qj4, sent
    into that session while qj3 runs, waits in the session lane until 1:30.
    """
    base = selectors.flow_bin(timezone.now()) - timedelta(minutes=10)
    driver.submit("qj1", inst="hubA/g/p", at=base + timedelta(seconds=5), seconds=60)
    driver.submit("qj2", inst="hubB/g/p", at=base + timedelta(seconds=6))
    driver.submit(
        "qj3",
        inst="hubB/g/p",
        at=base + timedelta(seconds=70),
        seconds=20,
        session="qs1",
        start_session=True,
    )
    driver.submit("qj4", inst="hubB/g/p", at=base + timedelta(seconds=71), session="qs1")
    driver.run_until(base + timedelta(seconds=200))
    return base


def test_the_queue_flow_counts_jobs_entering_and_starting_each_lane_per_minute(
    backend: models.Backend, traffic: datetime
) -> None:
    flow = selectors.queue_flow(backend=backend, since=traffic, now=traffic + timedelta(minutes=5))

    bins = flow["flow"]["bins"]
    assert bins == [(traffic + timedelta(minutes=n)).isoformat() for n in range(6)]
    assert flow["flow"]["entered"] == {
        m.RESERVATION: [0] * 6,
        m.SESSION: [0, 1, 0, 0, 0, 0],
        m.FAIR_SHARE: [2, 1, 0, 0, 0, 0],
    }
    assert flow["flow"]["started"] == {
        m.RESERVATION: [0] * 6,
        m.SESSION: [0, 1, 0, 0, 0, 0],
        m.FAIR_SHARE: [1, 2, 0, 0, 0, 0],
    }
    depth = flow["depth"]
    assert depth["x"][0] == traffic.isoformat() and depth["x"][-1] == bins[-1]
    assert max(depth[m.FAIR_SHARE]) == 1 and max(depth[m.SESSION]) == 1  # qj2; qj4
    assert depth["x"][1:-1] == sorted(depth["x"][1:-1])  # one point per sample
    assert [depth[lane][-1] for lane in selectors.LANES] == [0, 0, 0]  # all started


def test_the_live_bin_agrees_with_the_replay(backend: models.Backend, traffic: datetime) -> None:
    now = traffic + timedelta(seconds=80)
    replay = selectors.queue_flow(backend=backend, since=traffic, now=now)["flow"]
    live = live_bin(now)

    assert live["bin"] == replay["bins"][-1]
    assert live["entered"] == {lane: counts[-1] for lane, counts in replay["entered"].items()}
    assert live["started"] == {lane: counts[-1] for lane, counts in replay["started"].items()}
    assert live["entered"][m.FAIR_SHARE] == 1  # qj3, the session's first job


def test_the_depth_series_keeps_the_last_chart_points(
    backend: models.Backend, traffic: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = traffic + timedelta(minutes=5)
    full = selectors.queue_flow(backend=backend, since=traffic, now=now)["depth"]
    monkeypatch.setattr(selectors.charts, "CHART_POINTS", 3)

    kept = selectors.queue_flow(backend=backend, since=traffic, now=now)["depth"]

    assert len(full["x"]) > 3
    assert kept["x"] == full["x"][-3:] and kept[m.FAIR_SHARE] == full[m.FAIR_SHARE][-3:]


def test_the_session_timeline_marks_jobs_and_closes(
    backend: models.Backend, traffic: datetime, driver: Driver
) -> None:
    driver.act(m.CloseSession("qs1"), at=traffic + timedelta(seconds=240))
    staff = UserFactory(username="op", is_staff=True)

    timeline = selectors.session_timeline(
        since=traffic, now=traffic + timedelta(minutes=5), user=staff
    )

    assert {(s["session"], s["state"]) for s in timeline["spans"]} >= {
        ("qs1", m.ACTIVE),
    }
    assert [(c["session"], c["at"]) for c in timeline["closes"]] == [
        ("qs1", traffic + timedelta(seconds=240))
    ]
    marks = {j["job"]: j for j in timeline["jobs"]}
    assert set(marks) == {"qj3", "qj4"}  # the session's jobs, not qj1 / qj2
    assert marks["qj3"]["at"] == traffic + timedelta(seconds=70) and marks["qj3"]["started"]


def test_the_session_timeline_tells_batches_from_dedicated_sessions(
    backend: models.Backend, traffic: datetime, driver: Driver
) -> None:
    driver.act(m.CloseSession("qs1"), at=traffic + timedelta(seconds=240))
    staff = UserFactory(username="op", is_staff=True)
    window = {"since": traffic, "now": traffic + timedelta(minutes=5), "user": staff}
    dedicated = selectors.session_timeline(**window)
    models.Session.objects.filter(uid="qs1").update(mode=m.BATCH)

    batch = selectors.session_timeline(**window)

    assert {s["mode"] for s in dedicated["spans"] + dedicated["closes"]} == {m.DEDICATED}
    assert {s["mode"] for s in batch["spans"] + batch["closes"]} == {m.BATCH}


def test_researchers_see_other_instances_sessions_under_stand_in_names(
    backend: models.Backend, traffic: datetime
) -> None:
    outsider = UserFactory(username="eve")
    member = UserFactory(username="bob")
    models.Instance.objects.get(path="hubB/g/p").members.add(member)
    now = traffic + timedelta(minutes=5)

    seen_by = {
        user.username: selectors.session_timeline(since=traffic, now=now, user=user)
        for user in (outsider, member)
    }

    # eve sees that a session held sim_a, not whose: a stand-in name, the same each time.
    (stand_in,) = {s["session"] for s in seen_by["eve"]["spans"]}
    assert stand_in.startswith("other-") and "qs1" not in str(seen_by["eve"])
    again = selectors.session_timeline(since=traffic, now=now, user=outsider)
    assert {s["session"] for s in again["spans"]} == {stand_in}
    assert seen_by["eve"]["jobs"] == []
    assert {s["session"] for s in seen_by["bob"]["spans"]} == {"qs1"}
    assert {j["job"] for j in seen_by["bob"]["jobs"]} == {"qj3", "qj4"}


@override_settings(QDASH_VISIBILITY="open")
def test_an_open_facility_shows_every_session_by_name(
    backend: models.Backend, traffic: datetime
) -> None:
    outsider = UserFactory(username="eve")
    timeline = selectors.session_timeline(
        since=traffic, now=traffic + timedelta(minutes=5), user=outsider
    )
    assert {s["session"] for s in timeline["spans"]} == {"qs1"}
    assert timeline["jobs"] == []  # never other instances' jobs


def test_the_depth_starts_from_the_queue_when_the_chart_begins(
    backend: models.Backend, driver: Driver
) -> None:
    base = selectors.flow_bin(timezone.now()) - timedelta(minutes=10)
    driver.submit("qlong", inst="hubA/g/p", at=base, seconds=600)  # holds sim_a for 10 minutes
    for n, at in enumerate((1, 2, 3, 4)):
        driver.submit(f"qw{n}", inst="hubB/g/p", at=base + timedelta(seconds=at))
    driver.act(m.CancelJob("qw0"), at=base + timedelta(seconds=60))  # before the chart
    driver.act(m.CancelJob("qw1"), at=base + timedelta(seconds=180))  # during it
    since = base + timedelta(minutes=2)

    depth = selectors.queue_flow(backend=backend, since=since, now=base + timedelta(minutes=5))[
        "depth"
    ]

    # qw1, qw2 and qw3 waited at 2:00 (qw0 was gone); qw1's cancel leaves two.
    assert depth[m.FAIR_SHARE] == [3, 2, 2]
    assert depth["x"][1] == (base + timedelta(seconds=180)).isoformat()


def test_the_live_bin_counts_only_its_own_minute(backend: models.Backend, driver: Driver) -> None:
    base = selectors.flow_bin(timezone.now()) - timedelta(minutes=10)
    for n, second in enumerate((54, 61, 62)):
        driver.submit(f"qb{n}", inst="hubA/g/p", at=base + timedelta(seconds=second), seconds=600)

    first = live_bin(base + timedelta(seconds=59))
    second = live_bin(base + timedelta(seconds=65))

    assert first["entered"][m.FAIR_SHARE] == 1 and first["started"][m.FAIR_SHARE] == 1
    assert second["entered"][m.FAIR_SHARE] == 2 and second["started"][m.FAIR_SHARE] == 0


def test_the_chart_counts_waiting_jobs_in_the_lanes_the_cards_show(
    backend: models.Backend, driver: Driver
) -> None:
    now = selectors.flow_bin(timezone.now()) - timedelta(minutes=5)
    reservation = models.Reservation.objects.create(
        backend=backend,
        instance=models.Instance.objects.get(path="hubA/g/p"),
        start=now + timedelta(minutes=1),
        end=now + timedelta(hours=1),
    )
    driver.submit("qs_run", inst="hubB/g/p", at=now, seconds=600, session="qs2", start_session=True)
    driver.submit("qs_wait", inst="hubB/g/p", at=now + timedelta(seconds=1), session="qs2")
    driver.submit("qr_wait", inst="hubA/g/p", at=now + timedelta(seconds=2))
    driver.submit("qf_wait", inst="hubC/g/p", at=now + timedelta(seconds=3))
    inputs.record(Kind.RESERVATION, at=now + timedelta(seconds=4), target=str(reservation.pk))
    driver.run_until(now + timedelta(minutes=2))  # the window opens at 1:00
    with time_machine.travel(now + timedelta(minutes=2), tick=False):
        card = selectors.backend_cards(names=["sim_a"])[0]
        flow = selectors.queue_flow(backend=backend, since=now - timedelta(minutes=1))
    live = live_bin(now + timedelta(seconds=30))  # the minute of the submissions

    assert card.depth == {m.RESERVATION: 1, m.SESSION: 1, m.FAIR_SHARE: 1}
    assert {lane: flow["depth"][lane][-1] for lane in selectors.LANES} == card.depth
    assert live["entered"] == {m.RESERVATION: 0, m.SESSION: 1, m.FAIR_SHARE: 3}
