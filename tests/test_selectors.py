"""Reads behind the dashboard's charts: the queue-flow replay."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from scheduler import engine, models, selectors
from scheduler.policy import model as m
from tests.factories import UserFactory, submit_at, two_hubs

pytestmark = pytest.mark.django_db

NONE_ACTIVE = selectors.LaneRule()  # no active session, no reservation window open


def live_bin(at: datetime) -> dict[str, Any]:
    """sim_a's live bin of the queue flow at `at`, as the dashboard computes it."""
    return selectors.flow_now(cards=selectors.backend_cards(names=["sim_a"]), now=at)["sim_a"]


@pytest.fixture
def backend() -> models.Backend:
    return two_hubs()


@pytest.fixture
def traffic(backend: models.Backend) -> datetime:
    """Four jobs over two minutes on sim_a, from the start of a minute ten minutes ago.

    qj1 runs 0:05-1:05; qj2 waits behind it and starts at 1:05; qj3 opens a
    session at 1:10 (its first job comes through fair share) and qj4, sent
    into that session while qj3 runs, starts from the session lane.
    """
    base = selectors.flow_bin(timezone.now()) - timedelta(minutes=10)
    submit_at("qj1", inst="hubA/g/p", at=base + timedelta(seconds=5), seconds=60)
    submit_at("qj2", inst="hubB/g/p", at=base + timedelta(seconds=6))
    submit_at(
        "qj3", inst="hubB/g/p", at=base + timedelta(seconds=70), session="qs1", start_session=True
    )
    submit_at("qj4", inst="hubB/g/p", at=base + timedelta(seconds=71), session="qs1")
    engine.step([], at=base + timedelta(seconds=200))
    return base


def test_the_queue_flow_counts_jobs_entering_and_starting_each_lane_per_minute(
    backend: models.Backend, traffic: datetime
) -> None:
    flow = selectors.queue_flow(
        backend=backend, since=traffic, now=traffic + timedelta(minutes=5), lanes=NONE_ACTIVE
    )

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
    assert [depth[lane][-1] for lane in selectors.LANES] == [0, 0, 0]  # all started


def test_the_live_bin_agrees_with_the_replay(backend: models.Backend, traffic: datetime) -> None:
    now = traffic + timedelta(seconds=80)
    replay = selectors.queue_flow(backend=backend, since=traffic, now=now, lanes=NONE_ACTIVE)[
        "flow"
    ]
    live = live_bin(now)

    assert live["bin"] == replay["bins"][-1]
    assert live["entered"] == {lane: counts[-1] for lane, counts in replay["entered"].items()}
    assert live["started"] == {lane: counts[-1] for lane, counts in replay["started"].items()}
    assert live["entered"][m.FAIR_SHARE] == 1  # qj3, the session's first job


def test_the_depth_series_keeps_the_last_chart_points(
    backend: models.Backend, traffic: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = traffic + timedelta(minutes=5)
    full = selectors.queue_flow(backend=backend, since=traffic, now=now, lanes=NONE_ACTIVE)["depth"]
    monkeypatch.setattr(selectors, "CHART_POINTS", 3)

    kept = selectors.queue_flow(backend=backend, since=traffic, now=now, lanes=NONE_ACTIVE)["depth"]

    assert len(full["x"]) > 3
    assert kept["x"] == full["x"][-3:] and kept[m.FAIR_SHARE] == full[m.FAIR_SHARE][-3:]


def test_the_session_timeline_marks_jobs_and_closes(
    backend: models.Backend, traffic: datetime
) -> None:
    engine.step([m.CloseSession("qs1")], at=traffic + timedelta(seconds=240))
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


def test_researchers_see_every_session_but_only_their_instances_jobs(
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

    assert {s["session"] for s in seen_by["eve"]["spans"]} == {"qs1"}
    assert seen_by["eve"]["jobs"] == []
    assert {j["job"] for j in seen_by["bob"]["jobs"]} == {"qj3", "qj4"}


def test_the_depth_starts_from_the_jobs_waiting_when_the_chart_begins(
    backend: models.Backend,
) -> None:
    base = selectors.flow_bin(timezone.now()) - timedelta(minutes=10)
    submit_at("qlong", inst="hubA/g/p", at=base, seconds=600)  # holds sim_a for 10 minutes
    for n, at in enumerate((1, 2, 3, 4)):
        submit_at(f"qw{n}", inst="hubB/g/p", at=base + timedelta(seconds=at))
    engine.step([m.CancelJob("qw0")], at=base + timedelta(seconds=60))  # before the chart
    engine.step([m.CancelJob("qw1")], at=base + timedelta(seconds=180))  # during it
    since = base + timedelta(minutes=2)

    depth = selectors.queue_flow(
        backend=backend, since=since, now=base + timedelta(minutes=5), lanes=NONE_ACTIVE
    )["depth"]

    # qw1, qw2 and qw3 waited at 2:00 (qw0 was gone); qw1's cancel leaves two.
    assert depth[m.FAIR_SHARE] == [3, 2, 2]
    assert depth["x"][1] == (base + timedelta(seconds=180)).isoformat()


def test_the_live_bin_counts_only_its_own_minute(backend: models.Backend) -> None:
    base = selectors.flow_bin(timezone.now()) - timedelta(minutes=10)
    for n, second in enumerate((59, 61, 62)):
        submit_at(f"qb{n}", inst="hubA/g/p", at=base + timedelta(seconds=second), seconds=600)

    first = live_bin(base + timedelta(seconds=59))
    second = live_bin(base + timedelta(seconds=65))

    assert first["entered"][m.FAIR_SHARE] == 1 and first["started"][m.FAIR_SHARE] == 1
    assert second["entered"][m.FAIR_SHARE] == 2 and second["started"][m.FAIR_SHARE] == 0


def test_the_chart_counts_waiting_jobs_in_the_lanes_the_cards_show(
    backend: models.Backend,
) -> None:
    now = selectors.flow_bin(timezone.now())  # the four submissions share a minute
    models.Reservation.objects.create(
        backend=backend,
        instance=models.Instance.objects.get(path="hubA/g/p"),
        start=now + timedelta(minutes=1),
        end=now + timedelta(hours=1),
    )
    submit_at("qs_run", inst="hubB/g/p", at=now, seconds=600, session="qs2", start_session=True)
    submit_at("qs_wait", inst="hubB/g/p", at=now + timedelta(seconds=1), session="qs2")
    submit_at("qr_wait", inst="hubA/g/p", at=now + timedelta(seconds=2))
    submit_at("qf_wait", inst="hubC/g/p", at=now + timedelta(seconds=3))
    with time_machine.travel(now + timedelta(minutes=2), tick=False):  # the window is open
        card = selectors.backend_cards(names=["sim_a"])[0]
        since = now - timedelta(minutes=1)
        flow = selectors.queue_flow(backend=backend, since=since, lanes=card.lane_rule)
        live = live_bin(now)

    assert card.depth == {m.RESERVATION: 1, m.SESSION: 1, m.FAIR_SHARE: 1}
    assert {lane: flow["depth"][lane][-1] for lane in selectors.LANES} == card.depth
    assert live["entered"] == {m.RESERVATION: 1, m.SESSION: 1, m.FAIR_SHARE: 2}
