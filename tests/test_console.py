"""The console's one summary line a minute."""

from __future__ import annotations

import logging

import pytest

from scheduler.console import MinuteSummary


def test_it_logs_one_line_a_minute_with_the_counts_since_the_last(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    summary = MinuteSummary(clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="scheduler.summary"):
        for second in range(0, 60, 2):  # a step every 2 s
            now[0] = second
            summary.add(inputs=1, started=1, ended=0, timers=0, refused=0)
        now[0] = 60.0
        line = summary.add(inputs=0, started=0, ended=1, timers=2, refused=0)
        now[0] = 61.0
        assert summary.add(inputs=0, started=0, ended=0, timers=0, refused=0) is None
    assert line == (
        "last 1.0 min: 31 steps, 30 inputs, 30 jobs started, 1 ended, 2 timers, 0 refused"
    )
    assert [r.getMessage() for r in caplog.records] == [line]
