"""Daily rollups: each instance's usage per backend per UTC day (`models.UsageDay`).

The leader writes them for closed days in its idle time (`housekeeping`), one day at
a time and idempotently (a day's rows are replaced whole); `HistoryMark` says up to
which day they are written. A day is closed `GRACE` after its UTC midnight, so every
charge and job end of that day has been written by then. The same `compute` gives
today's partial day (and any day not rolled yet) live from raw rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Sum

from scheduler import models
from scheduler.history import waits
from scheduler.policy import model as m

GRACE = timedelta(minutes=10)  # a day is closed this long after its midnight (UTC)
FINAL = (m.COMPLETED, m.FAILED, m.CANCELLED)
STATE_FIELDS = {m.COMPLETED: "completed", m.FAILED: "failed", m.CANCELLED: "cancelled"}
Key = tuple[int, int | None]  # (instance id, backend id or None)


@dataclass
class DayRow:
    """What one instance did on one backend in a span: the fields of a `UsageDay`."""

    run_us: int = 0
    hold_us: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    wait_list: list[float] = field(default_factory=list)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def closed_before(now: datetime) -> date:
    """The first day that is not closed at `now`: days before it may be rolled up."""
    return (now.astimezone(UTC) - GRACE).date()


def compute(day: date) -> dict[Key, DayRow]:
    """A day's rows from the raw jobs and usage charges (run and hold) that ended in it:
    counts and sums added up by the database, waits read one by one for the histogram."""
    start, end = day_start(day), day_start(day + timedelta(days=1))
    rows: dict[Key, DayRow] = {}
    jobs = models.Job.objects.filter(ended_at__gte=start, ended_at__lt=end, status__in=FINAL)
    counts = jobs.values_list("instance_id", "backend_id", "status").annotate(n=Count("id"))
    for instance, backend, status, n in counts.order_by():
        field = STATE_FIELDS[status]
        row = rows.setdefault((instance, backend), DayRow())
        setattr(row, field, getattr(row, field) + n)
    wait = ExpressionWrapper(F("started_at") - F("submitted_at"), output_field=DurationField())
    started = (
        jobs.filter(started_at__isnull=False)
        .annotate(wait=wait)
        .values_list("instance_id", "backend_id", "wait")
    )
    for instance, backend, waited in started.iterator(chunk_size=10_000):
        row = rows.setdefault((instance, backend), DayRow())
        row.wait_list.append(max(0.0, waited.total_seconds()))
    charges = (
        models.UsageCharge.objects.filter(
            ended_at__gte=start,
            ended_at__lt=end,
            kind__in=[models.UsageCharge.Kind.RUN, models.UsageCharge.Kind.HOLD],
        )
        .values_list("instance_id", "kind", "job__backend_id", "session__backend_id")
        .annotate(total=Sum("microseconds"))
        .order_by()
    )
    for instance, kind, job_backend, session_backend, amount in charges:
        row = rows.setdefault((instance, job_backend or session_backend), DayRow())
        if kind == models.UsageCharge.Kind.RUN:
            row.run_us += int(amount)
        else:
            row.hold_us += int(amount)
    return rows


def write_day(day: date, rows: dict[Key, DayRow]) -> int:
    """Replace `day`'s rollup with `rows`; returns how many rows it has."""
    objects = [
        models.UsageDay(
            day=day,
            instance_id=instance,
            backend_id=backend,
            run_us=row.run_us,
            hold_us=row.hold_us,
            completed=row.completed,
            failed=row.failed,
            cancelled=row.cancelled,
            waits=waits.histogram(row.wait_list),
        )
        for (instance, backend), row in rows.items()
    ]
    models.UsageDay.objects.filter(day=day).delete()
    models.UsageDay.objects.bulk_create(objects, batch_size=1_000)
    return len(objects)


def rolled_until() -> date | None:
    """The first day without a rollup (None: none written yet)."""
    mark = models.HistoryMark.objects.first()
    return mark.rolled_until if mark else None


def first_day() -> date | None:
    """The earliest day anything ended (a job or a charge); None: nothing has."""
    ends = [
        models.Job.objects.filter(status__in=FINAL).aggregate(first=Min("ended_at"))["first"],
        models.UsageCharge.objects.aggregate(first=Min("ended_at"))["first"],
    ]
    known = [end for end in ends if end is not None]
    return min(known).astimezone(UTC).date() if known else None


def next_day(now: datetime) -> date | None:
    """The next closed day to roll up at `now` (None: every closed day is rolled)."""
    first = rolled_until() or first_day()
    if first is None or first >= closed_before(now):
        return None
    return first


def roll_day(day: date) -> int:
    """Roll up `day` and move the mark past it, in one transaction; rows written."""
    with transaction.atomic():
        written = write_day(day, compute(day))
        mark = models.HistoryMark.objects.select_for_update().first()
        if mark is None:
            models.HistoryMark.objects.create(rolled_until=day + timedelta(days=1))
        elif mark.rolled_until is None or mark.rolled_until <= day:
            mark.rolled_until = day + timedelta(days=1)
            mark.save(update_fields=["rolled_until"])
    return written


def roll(
    now: datetime,
    *,
    through: date | None = None,
    limit: int | None = None,
    advance: Callable[[int], object] = lambda done: None,
) -> int:
    """Roll up every closed day not rolled yet (before `through` too, if given), at most
    `limit` days; returns the days rolled."""
    done = 0
    while limit is None or done < limit:
        day = next_day(now)
        if day is None or (through is not None and day >= through):
            break
        roll_day(day)
        done += 1
        advance(done)
    return done


def days_to_roll(now: datetime) -> int:
    first = next_day(now)
    return 0 if first is None else (closed_before(now) - first).days
