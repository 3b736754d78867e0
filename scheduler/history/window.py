"""Usage in the fair-share window for the pages, from the daily rollups where it can.

The window (`after`, now] holds whole UTC days that are rolled up: their run and hold
seconds come from `UsageDay` (one row per instance, backend and day), and only the
ragged first day and the days not rolled yet are summed from the raw charges. The
total equals `scheduler.usage.usage_in_window` over run and hold charges (the only
kinds a live database has) as long as pruning keeps the charges in the window, which
it does (`prune.charge_horizon`). The leader's own load still sums the raw charges.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db.models import F, Sum

from scheduler import models
from scheduler.history import rollups
from scheduler.usage import usage_in_window


def window_usage(*, after: datetime) -> dict[str, int]:
    """Microseconds charged after `after`, per instance path."""
    rolled = rollups.rolled_until()
    first_full = after.astimezone(UTC).date() + timedelta(days=1)
    if rolled is None or first_full >= rolled:
        return {path: used.total for path, used in usage_in_window(after=after).items()}
    totals: dict[str, int] = {}
    edges = [
        usage_in_window(after=after, before=rollups.day_start(first_full)),
        usage_in_window(after=rollups.day_start(rolled) - timedelta(microseconds=1)),
    ]
    for used in edges:
        for path, u in used.items():
            totals[path] = totals.get(path, 0) + u.total
    days = (
        models.UsageDay.objects.filter(day__gte=first_full, day__lt=rolled)
        .values("instance__path")
        .annotate(total=Sum(F("run_us") + F("hold_us")))
    )
    for row in days:
        path = row["instance__path"]
        totals[path] = totals.get(path, 0) + int(row["total"] or 0)
    return totals
