"""Time for the scheduler: a clock object, and conversion to policy ticks.

The policy counts time in integer microseconds ("ticks") since the Unix epoch,
so database timestamps (microsecond precision) convert exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from django.utils import timezone

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def to_ticks(moment: datetime) -> int:
    return (moment - EPOCH) // TICK


def from_ticks(ticks: int) -> datetime:
    return EPOCH + timedelta(microseconds=ticks)


def span_ticks(span: timedelta | None) -> int | None:
    return None if span is None else span // TICK


def ticks_span(ticks: int | None) -> timedelta | None:
    return None if ticks is None else timedelta(microseconds=ticks)


def maybe_from_ticks(ticks: int | None) -> datetime | None:
    return None if ticks is None else from_ticks(ticks)


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
