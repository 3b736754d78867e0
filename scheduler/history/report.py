"""The usage report: per instance and per day or week, QPU seconds (runs and holds
apart), jobs by final state and wait p50/p95.

Closed days come from the rollups (`models.UsageDay`); days not rolled yet (today's
partial day, or days the leader has not reached) are computed live from their raw
rows (`rollups.compute`). The page, its CSV and `manage.py usage_report` all print
`usage_report`'s rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from scheduler import models
from scheduler.clock import ticks_seconds
from scheduler.history import rollups, waits

BY = ("day", "week")
COLUMNS = (
    "period",
    "instance",
    "run_seconds",
    "hold_seconds",
    "completed",
    "failed",
    "cancelled",
    "jobs",
    "wait_p50_seconds",
    "wait_p95_seconds",
)


@dataclass
class ReportRow:
    period: date  # the day, or the Monday that starts the week (UTC)
    instance: str
    run_us: int = 0
    hold_us: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    counts: waits.Counts = field(default_factory=waits.new)  # merged wait histogram

    @property
    def run_seconds(self) -> float:
        return ticks_seconds(self.run_us)

    @property
    def hold_seconds(self) -> float:
        return ticks_seconds(self.hold_us)

    @property
    def jobs(self) -> int:
        return self.completed + self.failed + self.cancelled

    @property
    def wait_p50(self) -> float | None:
        return self._percentiles()[0]

    @property
    def wait_p95(self) -> float | None:
        return self._percentiles()[1]

    def _percentiles(self) -> list[float | None]:
        """p50 and p95, computed once (a row is complete when the report is)."""
        cached = self.__dict__.get("_p")
        if cached is None:
            cached = self.__dict__["_p"] = waits.percentiles(self.counts, (50, 95))
        return cached

    def cells(self) -> list[str]:
        """The row as the CSV and the command print it."""
        return [
            self.period.isoformat(),
            self.instance,
            f"{self.run_seconds:.3f}",
            f"{self.hold_seconds:.3f}",
            str(self.completed),
            str(self.failed),
            str(self.cancelled),
            str(self.jobs),
            _seconds(self.wait_p50),
            _seconds(self.wait_p95),
        ]


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


@dataclass
class Report:
    since: date
    until: date  # inclusive
    by: str
    rows: list[ReportRow]
    live_days: int  # days computed from raw rows (not rolled up yet)

    @property
    def instances(self) -> list[str]:
        return sorted({row.instance for row in self.rows})

    @property
    def periods(self) -> list[date]:
        return sorted({row.period for row in self.rows})

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(row.cells() for row in self.rows)
        return out.getvalue()

    def summary(self) -> str:
        if "_summary" not in self.__dict__:
            self.__dict__["_summary"] = self._summary()
        return str(self.__dict__["_summary"])

    def _summary(self) -> str:
        total = ReportRow(self.since, "")
        for row in self.rows:
            _add(total, row.run_us, row.hold_us, row.completed, row.failed, row.cancelled)
            total.counts += row.counts
        return (
            f"{len(self.rows)} rows, {len(self.instances)} instances, "
            f"{self.since}..{self.until} by {self.by}: run {total.run_seconds:,.1f} s, "
            f"hold {total.hold_seconds:,.1f} s, {total.jobs:,} jobs ({total.completed:,} "
            f"completed, {total.failed:,} failed, {total.cancelled:,} cancelled), "
            f"wait p50 {_seconds(total.wait_p50) or '-'} s, p95 {_seconds(total.wait_p95) or '-'} s"
        )


def _add(row: ReportRow, run: int, hold: int, completed: int, failed: int, cancelled: int) -> None:
    row.run_us += run
    row.hold_us += hold
    row.completed += completed
    row.failed += failed
    row.cancelled += cancelled


def _rolled_rows(
    since: date, until: date, by: str, ids: list[int] | None
) -> Iterator[tuple[Any, ...]]:
    """The rollups of days `since`..`until` (all rolled): (day, instance id, run, hold,
    completed, failed, cancelled, wait histogram), one per instance, backend and day."""
    days = models.UsageDay.objects.filter(day__gte=since, day__lte=until)
    if ids is not None:
        days = days.filter(instance_id__in=ids)
    fields = ("day", "instance_id", "run_us", "hold_us", "completed", "failed", "cancelled")
    # Unordered and fetched at once: the report orders its own rows, and a span's
    # rollups are a few rows per instance, backend and day.
    yield from days.values_list(*fields, "waits").order_by()


def period_of(day: date, by: str) -> date:
    return day - timedelta(days=day.weekday()) if by == "week" else day


def usage_report(
    *,
    since: date,
    until: date,
    by: str,
    instances: Iterable[str] | None = None,
    now: datetime | None = None,
    phase: Callable[[str], object] = lambda name: None,
) -> Report:
    """The report over days `since`..`until` (inclusive, UTC), per instance and `by`
    period; only `instances` (paths) when given (None: every instance)."""
    now = now or datetime.now(UTC)
    wanted = None if instances is None else frozenset(instances)
    paths = dict(models.Instance.objects.values_list("pk", "path"))
    rows: dict[tuple[date, str], ReportRow] = {}

    def add(
        day: date, instance: int, values: tuple[int, int, int, int, int], hist: waits.Histogram
    ) -> None:
        path = paths.get(instance)
        if path is None or (wanted is not None and path not in wanted):
            return
        period = period_of(day, by)
        row = rows.setdefault((period, path), ReportRow(period, path))
        _add(row, *values)
        waits.merge(row.counts, hist)

    rolled = rollups.rolled_until()
    phase("rollups")
    if rolled is not None and since < rolled:
        ids = None
        if wanted is not None:
            ids = [pk for pk, path in paths.items() if path in wanted]
        for row in _rolled_rows(since, min(until, rolled - timedelta(days=1)), by, ids):
            add(row[0], row[1], row[2:7], row[7])
    # Days not rolled up: from the mark, or (none yet) from the first day anything ended.
    start = rolled or rollups.first_day() or now.astimezone(UTC).date() + timedelta(days=1)
    first = max(since, start)
    last = min(until, now.astimezone(UTC).date())  # nothing has ended in the future
    live = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    for day in live:
        phase(f"live {day}")
        for (instance, _backend), values in rollups.compute(day).items():
            counts = (values.run_us, values.hold_us, values.completed, values.failed)
            add(day, instance, (*counts, values.cancelled), waits.histogram(values.wait_list))
    ordered = sorted(rows.values(), key=lambda row: (row.period, row.instance))
    return Report(since, until, by, ordered, live_days=len(live))
