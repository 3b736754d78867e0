"""The dashboard's charts: queue flow and depth from the leader's samples, the live bin."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from scheduler import inputs, models, selectors
from scheduler.policy import model as m
from tests.selectors.driver import Driver

pytestmark = pytest.mark.django_db
Kind = models.Input.Kind


def live_bin(at: datetime) -> dict[str, Any]:
    """sim_a's live bin of the queue flow at `at`, as the dashboard computes it."""
    return selectors.flow_now(cards=selectors.backend_cards(names=["sim_a"]), now=at)["sim_a"]


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
