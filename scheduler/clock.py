"""Time for the scheduler: a clock object, and every conversion of policy ticks.

The policy counts time in integer microseconds ("ticks") since the Unix epoch,
so database timestamps (microsecond precision) convert exactly. Scenario,
trace and page times are seconds; settings are seconds too. Converting between
seconds, ticks, timedeltas and datetimes happens here and nowhere else.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from django.utils import timezone

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TICK = timedelta(microseconds=1)
TICKS_PER_SECOND = 1_000_000


# ------------------------------------------------------------ datetimes
def to_ticks(moment: datetime) -> int:
    return (moment - EPOCH) // TICK


def from_ticks(ticks: int) -> datetime:
    return EPOCH + timedelta(microseconds=ticks)


def maybe_to_ticks(moment: datetime | None) -> int | None:
    return None if moment is None else to_ticks(moment)


def maybe_from_ticks(ticks: int | None) -> datetime | None:
    return None if ticks is None else from_ticks(ticks)


# ------------------------------------------------------------ timedeltas
def span_ticks(span: timedelta | None) -> int | None:
    return None if span is None else span // TICK


def ticks_span(ticks: int | None) -> timedelta | None:
    return None if ticks is None else timedelta(microseconds=ticks)


# --------------------------------------------------------------- seconds
def seconds_ticks(seconds: float) -> int:
    """Seconds (maybe fractional) as ticks, rounded to the microsecond once."""
    return round(seconds * TICKS_PER_SECOND)


def maybe_seconds_ticks(seconds: float | None) -> int | None:
    return None if seconds is None else seconds_ticks(seconds)


def ticks_seconds(ticks: int) -> float:
    """Ticks as (fractional) seconds, for pages, metrics and reports."""
    return ticks / TICKS_PER_SECOND


def exact_seconds(ticks: int | None) -> int | float | None:
    """Ticks as scenario and trace seconds: a whole number when it is one."""
    if ticks is None:
        return None
    whole, rest = divmod(ticks, TICKS_PER_SECOND)
    return whole if rest == 0 else ticks / TICKS_PER_SECOND


# ----------------------------------------------------------------- clocks
class Clock(Protocol):
    """Anything that tells the time."""

    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time."""

    def now(self) -> datetime:
        return timezone.now()


class FakeClock:
    """A clock that moves only when told to (simulation and tests)."""

    def __init__(self, start: datetime = EPOCH) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment

    def set(self, moment: datetime) -> None:
        self.moment = moment

    def advance(self, span: timedelta) -> None:
        self.moment += span
