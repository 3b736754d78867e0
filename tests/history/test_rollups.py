"""Daily rollups equal a raw computation of the same jobs and charges."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta

import pytest

from scheduler import models
from scheduler.history import rollups, waits
from scheduler.policy import model as m
from tests.history.data import DAY0, Raw, at, history

pytestmark = pytest.mark.django_db
DAYS = 4
NOW = at(DAY0 + timedelta(days=DAYS), 3600)  # an hour into the day after the history


def exact_percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def raw_days(raws: list[Raw]) -> dict[tuple, dict]:
    out: dict[tuple, dict] = defaultdict(
        lambda: {"run": 0, "hold": 0, m.COMPLETED: 0, m.FAILED: 0, m.CANCELLED: 0, "waits": []}
    )
    for r in raws:
        row = out[(r.day, r.instance, r.backend)]
        row["run"] += r.run_us
        row["hold"] += r.hold_us
        if r.status:
            row[r.status] += 1
        if r.wait is not None:
            row["waits"].append(r.wait)
    return out


def test_every_closed_day_is_rolled_up_to_the_raw_numbers() -> None:
    raws = history(days=DAYS)
    assert rollups.next_day(NOW) == DAY0
    assert rollups.roll(NOW) == DAYS
    assert rollups.rolled_until() == DAY0 + timedelta(days=DAYS)
    assert rollups.next_day(NOW) is None  # the day NOW is in is not closed
    rolled = {
        (r.day, r.instance.path, r.backend.name): r
        for r in models.UsageDay.objects.select_related("instance", "backend")
    }
    expected = raw_days(raws)
    assert set(rolled) == set(expected)
    for key, want in expected.items():
        got = rolled[key]
        assert (got.run_us, got.hold_us) == (want["run"], want["hold"]), key
        assert (got.completed, got.failed, got.cancelled) == (
            want[m.COMPLETED],
            want[m.FAILED],
            want[m.CANCELLED],
        ), key
        assert got.waits == waits.histogram(want["waits"]), key


def test_percentiles_of_merged_days_are_within_the_stated_error_of_the_exact_ones() -> None:
    raws = history(days=DAYS, per_day=120)
    rollups.roll(NOW)
    merged = waits.new()
    for day in models.UsageDay.objects.all():
        waits.merge(merged, day.waits)
    all_waits = [r.wait for r in raws if r.wait is not None]
    assert merged.sum() == len(all_waits)
    for q in (50, 95):
        exact = exact_percentile(all_waits, q)
        approx = waits.percentile(merged, q)
        assert approx is not None
        if exact < waits.FLOOR:
            assert approx == 0.0
        else:
            assert abs(approx - exact) <= waits.RELATIVE_ERROR * exact + 1e-9, (q, exact, approx)


def test_a_day_is_rolled_only_once_it_is_closed_and_a_second_roll_changes_nothing() -> None:
    history(days=1)
    assert rollups.next_day(at(DAY0, 86_000)) is None  # the day itself is still open
    just_after = at(DAY0 + timedelta(days=1), 60)  # within the grace after midnight
    assert rollups.next_day(just_after) is None
    assert rollups.roll(at(DAY0 + timedelta(days=1), 3600)) == 1
    before = list(models.UsageDay.objects.values())
    rollups.roll_day(DAY0)  # again: replaced whole, the same rows
    after = list(models.UsageDay.objects.values())
    strip = [{k: v for k, v in row.items() if k != "id"} for row in before]
    assert [{k: v for k, v in row.items() if k != "id"} for row in after] == strip
    assert rollups.rolled_until() == DAY0 + timedelta(days=1)


def test_days_without_anything_are_passed_over_and_nothing_means_nothing_to_roll() -> None:
    assert rollups.next_day(NOW) is None
    history(days=1)
    assert rollups.roll(NOW) == DAYS  # DAY0, then three empty days up to NOW's
    assert models.UsageDay.objects.filter(day__gt=DAY0).count() == 0


@pytest.mark.parametrize("rolled_days", [0, 2, DAYS])
@pytest.mark.parametrize("after_seconds", [-3600, 0, 40_000, 86_400 + 17])
def test_the_fair_share_window_from_rollups_equals_the_raw_charges(
    rolled_days: int, after_seconds: int
) -> None:
    from scheduler.history.window import window_usage
    from scheduler.usage import usage_in_window

    history(days=DAYS)
    rollups.roll(at(DAY0 + timedelta(days=rolled_days), 3600))
    after = at(DAY0, after_seconds)
    raw = {path: used.total for path, used in usage_in_window(after=after).items()}
    assert window_usage(after=after) == raw
