"""The virtual clock: a scenario's events driven through an engine, instant by instant.

The run ends when nothing more can happen (no event left, nothing running, no
live timer) or after the scenario's `until`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from scheduler.policy import model as m
from scheduler.sim.scenario import Scenario
from scheduler.sim.trace import FinalState, write_trace


class Engine(Protocol):
    def run_instant(self, t: int, actions: Sequence[m.Action]) -> list[m.Outcome]: ...
    def next_due(self) -> int | None: ...
    @property
    def last_activity(self) -> int | None: ...
    def final_state(self, end_time: int) -> FinalState: ...


def simulate(
    scenario: Scenario, engine: Engine, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Replay every event of `scenario` through `engine` and return the trace.

    `progress(done)` hears how many events have been applied, after each instant."""
    events = scenario.events
    refused: dict[str, tuple[int, m.Submit, str]] = {}
    end_time: int | None = None
    i = 0
    until = scenario.until
    while True:
        due = engine.next_due()
        if i < len(events) and (due is None or events[i][0] <= due):
            t = events[i][0]
        elif due is not None:
            t = due
        else:
            break
        if until is not None and t > until:
            break
        batch = []
        while i < len(events) and events[i][0] == t:
            batch.append(events[i][1])
            i += 1
        outcomes = engine.run_instant(t, batch)
        for action, outcome in zip(batch, outcomes, strict=True):
            if isinstance(action, m.Submit) and not outcome.accepted:
                refused[action.job] = (t, action, outcome.code or "")
        if batch:
            end_time = t
            if progress is not None:
                progress(i)
    last = engine.last_activity
    end = max(x for x in (end_time, last, 0) if x is not None)
    return write_trace(scenario, engine.final_state(end), refused, end)
