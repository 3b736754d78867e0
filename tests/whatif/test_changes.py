"""Proposed changes: one text syntax, checked against the database and each other."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scheduler import models
from scheduler.clock import from_ticks, to_ticks
from scheduler.policy import futures
from scheduler.policy import model as m
from scheduler.whatif.changes import ChangeError, parse_all, parse_moment
from tests.factories import BackendFactory, instance

pytestmark = pytest.mark.django_db

NOW = from_ticks(1_800_000_000_000_000)  # 2027-01-15 08:00 UTC
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def world() -> None:
    BackendFactory(name="sim_a", job_overhead=timedelta(seconds=2))
    instance("h/g/p")
    instance("h/g/q", share=3)
    models.Reservation.objects.create(
        backend=models.Backend.objects.get(name="sim_a"),
        instance=instance("h/g/p"),
        start=NOW + 2 * HOUR,
        end=NOW + 3 * HOUR,
    )


def existing() -> models.Reservation:
    return models.Reservation.objects.get()


def test_a_window_becomes_the_reservation_the_admin_would_add() -> None:
    (p,) = parse_all(["reservation:sim_a,h/g/q,+10m,+1h,exclusive"], now=NOW)
    assert p.change == m.PutReservation(
        "sim_a", "h/g/q", "new-1", to_ticks(NOW) + 600_000_000, to_ticks(NOW + HOUR), True
    )
    assert p.applicable and p.summary.startswith("Add an exclusive window for h/g/q on sim_a")


def test_times_read_iso_clock_times_and_offsets() -> None:
    assert parse_moment("2027-01-15T09:30", now=NOW) == NOW + 1.5 * HOUR
    assert parse_moment("2027-01-15T09:30:00+01:00", now=NOW) == NOW + 0.5 * HOUR
    assert parse_moment("14:00", now=NOW) == NOW + 6 * HOUR
    assert parse_moment("+90m", now=NOW) == parse_moment("+1.5h", now=NOW) == NOW + 1.5 * HOUR


def test_every_kind_of_change_maps_to_what_the_rules_apply() -> None:
    rid = existing().pk
    specs = [
        f"move:{rid},+2h,+4h,exclusive",
        "share:h/g=2.5",
        "pause:sim_a",
        "resume:sim_a",
        "overhead:sim_a=7.5",
        "load:sim_a,h/g/p,120",
        f"delete:{rid}",
    ]
    parsed = parse_all(specs, now=NOW)
    assert [p.change for p in parsed] == [
        m.PutReservation(
            "sim_a", "h/g/p", str(rid), to_ticks(NOW + 2 * HOUR), to_ticks(NOW + 4 * HOUR), True
        ),
        m.SetShare("h/g", 2.5),
        m.SetBackendStatus("sim_a", m.PAUSED),
        m.SetBackendStatus("sim_a", m.ONLINE),
        futures.SetOverhead("sim_a", 7_500_000),
        None,
        m.RemoveReservation(str(rid)),
    ]
    load = parsed[5].load
    assert load is not None and (load.per_hour, load.work) == (120, 4000 * 100)
    assert [p.applicable for p in parsed] == [True] * 5 + [False, True]


def test_an_allocation_is_set_with_its_mode_and_period_or_removed() -> None:
    models.Allocation.objects.create(instance=instance("h"), seconds=60)
    rolling, fixed, removed = parse_all(
        ["allocation:h/g=600", "allocation:h/g/p=30,safe,+1h,86400", "allocation:h=none"],
        now=NOW,
    )
    assert rolling.change == m.PutAllocation(node="h/g", amount=600_000_000)
    assert fixed.change == m.PutAllocation(
        node="h/g/p",
        amount=30_000_000,
        enforce="safe",
        period=m.Period(to_ticks(NOW + HOUR), 86_400_000_000),
    )
    assert removed.change == m.PutAllocation(node="h", amount=None)
    assert removed.summary == "Remove the allocation of h (60 s (queue))"
    assert rolling.summary.startswith("Give h/g an allocation of 600 s in the rolling window")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("allocation:h/g=-5", "the allocation must be between 0 and"),
        ("allocation:h/g=5,never", "mode 'never'"),
        ("allocation:h/g=5,queue,+1h", "a fixed period needs its START and its LENGTH"),
        ("allocation:h/g=5,queue,+1h,0", "the period's length must be between"),
        ("allocation:h/nope=5", "unknown instance 'h/nope'"),
        ("allocation:h/g=none", "h/g has no allocation to remove"),
        ("allocation:h/g", "expected NODE=SECONDS"),
        ("reservation:sim_x,h/g/p,+1h,+2h", "unknown backend 'sim_x'"),
        ("reservation:sim_a,h/g,+1h,+2h", "'h/g' is not a hub/group/project instance"),
        ("reservation:sim_a,h/g/p,+1h", "expected BACKEND,INSTANCE,START,END[,exclusive]"),
        ("reservation:sim_a,h/g/p,+2h,+1h", "the window must end after it starts"),
        ("reservation:sim_a,h/g/p,+1h,+2h,sometimes", "'sometimes': expected 'exclusive'"),
        ("reservation:sim_a,h/g/q,+150m,+4h", "overlaps the one of h/g/p on sim_a"),
        ("reservation:sim_a,h/g/q,-1h,+0m", "'-1h' is not a time"),
        ("reservation:sim_a,h/g/q,2026-01-01T00:00,2026-01-01T01:00", "ends in the past"),
        ("move:999999999,+1h,+2h", "no reservation 999999999"),
        ("move:x,+1h,+2h", "is not a number"),
        ("share:h/g/p=-1", "the share must be between 0 and"),
        ("share:h/g/p", "expected PATH=VALUE"),
        ("share:nowhere=1", "unknown instance 'nowhere'"),
        ("pause:sim_b", "unknown backend 'sim_b'"),
        ("overhead:sim_a=lots", "the overhead 'lots' is not a number"),
        ("load:sim_a,h/g/p,1e9", "jobs per hour must be between 0 and 5000"),
        ("teleport:sim_a", "unknown change 'teleport'"),
        ("pause", "expected KIND:ARGS"),
        ("reservation:sim_a,h/g/p,25:00,+1h", "'25:00' is not a time of day"),
    ],
)
def test_a_bad_change_is_refused_in_one_line(spec: str, message: str) -> None:
    with pytest.raises(ChangeError) as refused:
        parse_all([spec], now=NOW)
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_changes_are_checked_against_the_ones_before_them() -> None:
    rid = existing().pk
    with pytest.raises(ChangeError, match="overlaps the one of h/g/q"):
        parse_all(["reservation:sim_a,h/g/q,+4h,+5h", "reservation:sim_a,h/g/p,+270m,+6h"], now=NOW)
    # The window moved away or deleted first frees its place; a deleted one is gone.
    parse_all([f"move:{rid},+5h,+6h", "reservation:sim_a,h/g/q,+2h,+3h"], now=NOW)
    parse_all([f"delete:{rid}", "reservation:sim_a,h/g/q,+2h,+3h"], now=NOW)
    with pytest.raises(ChangeError, match=f"no reservation {rid}"):
        parse_all([f"delete:{rid}", f"move:{rid},+5h,+6h"], now=NOW)


def test_an_open_window_can_move_only_its_end_and_an_ended_one_not_at_all() -> None:
    row = existing()
    row.started = True
    row.save()
    with pytest.raises(ChangeError, match="only its end can move"):
        parse_all([f"move:{row.pk},+1h,+4h"], now=NOW)
    start = row.start.isoformat()
    (p,) = parse_all([f"move:{row.pk},{start},+4h"], now=NOW)
    assert p.reservation is not None and p.reservation.end == NOW + 4 * HOUR
    row.ended = True
    row.save()
    with pytest.raises(ChangeError, match="has ended"):
        parse_all([f"delete:{row.pk}"], now=NOW)
