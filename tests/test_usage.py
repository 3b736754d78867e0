"""Usage in the window: charges summed per instance, the bounds as each reader asks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scheduler import models
from scheduler.usage import usage_in_window
from tests.factories import instance

pytestmark = pytest.mark.django_db
T0 = datetime(2030, 1, 1, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.fixture
def charges() -> None:
    """hubA/g/p charged 1 s at T0+1 s and 2 s at T0+2 s; hubB/g/p 4 s at T0+3 s."""
    a, b = instance("hubA/g/p"), instance("hubB/g/p")
    run = models.UsageCharge.Kind.RUN
    for node, seconds, at in ((a, 1, 1), (a, 2, 2), (b, 4, 3)):
        models.UsageCharge.objects.create(
            instance=node, kind=run, microseconds=seconds * 1_000_000, ended_at=T0 + at * SECOND
        )


def totals(**bounds: Any) -> dict[str, int]:
    return {path: used.total for path, used in usage_in_window(**bounds).items()}


@pytest.mark.usefixtures("charges")
def test_it_sums_the_charges_after_the_start_of_the_window_per_instance() -> None:
    used = usage_in_window(after=T0)
    assert {path: u.total for path, u in used.items()} == {
        "hubA/g/p": 3_000_000,
        "hubB/g/p": 4_000_000,
    }
    assert used["hubA/g/p"].last == T0 + 2 * SECOND


@pytest.mark.usefixtures("charges")
@pytest.mark.parametrize(
    ("bounds", "expected"),
    [
        pytest.param(
            {"after": T0 + SECOND},
            {"hubA/g/p": 2_000_000, "hubB/g/p": 4_000_000},
            id="after_is_exclusive",
        ),
        pytest.param(
            {"after": T0, "before": T0 + 2 * SECOND},
            {"hubA/g/p": 1_000_000},
            id="before_is_exclusive",
        ),
        pytest.param(
            {"after": T0, "through": T0 + 2 * SECOND},
            {"hubA/g/p": 3_000_000},
            id="through_is_inclusive",
        ),
    ],
)
def test_the_bounds_of_the_window(bounds: dict[str, datetime], expected: dict[str, int]) -> None:
    assert totals(**bounds) == expected


@pytest.mark.usefixtures("charges")
def test_it_can_read_one_instance() -> None:
    node = models.Instance.objects.get(path="hubB/g/p")
    assert totals(after=T0, instance=node) == {"hubB/g/p": 4_000_000}
