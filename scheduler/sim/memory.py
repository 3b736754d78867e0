"""`simulate --engine memory`: the pure policy, instant by instant."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from scheduler.policy import Policy
from scheduler.policy import model as m
from scheduler.sim.scenario import Scenario
from scheduler.sim.trace import FinalState


def build_policy(scenario: Scenario) -> Policy:
    """A policy holding a scenario's backends, reservations, shares and prior usage."""
    policy = Policy(scenario.settings)
    for backend in scenario.backends:
        policy.add_backend(m.Backend(name=backend.name, status=backend.status))
    for r in scenario.reservations:
        policy.add_reservation(
            m.Reservation(
                id=r.id,
                backend=r.backend,
                instance=r.instance,
                start=r.start,
                end=r.end,
                exclusive=r.exclusive,
            )
        )
    for node, share in scenario.shares.items():
        policy.set_share(node, share)
    policy.usage.load((0, instance, used) for instance, used in scenario.usage.items())
    for allocation in scenario.allocations:
        policy.put_allocation(allocation)
    return policy


@dataclass
class MemoryEngine:
    """The pure policy, keeping the order in which backends start jobs.

    A job the scenario says `fails` runs with no known end; its executor's report
    (a failure with that code, its duration after it started) applies first among
    the actions of its instant, as the live leader applies executors' reports (one
    due at the instant the job started, a zero duration, in a second pass there).
    """

    scenario: Scenario
    policy: Policy = field(init=False)
    starts: dict[str, list[tuple[int, str]]] = field(init=False)
    _runs: dict[str, int] = field(init=False, default_factory=dict)  # failing job -> run time
    _reports: list[tuple[int, str]] = field(init=False, default_factory=list)  # heap

    def __post_init__(self) -> None:
        self.policy = build_policy(self.scenario)
        self.starts = {b.name: [] for b in self.scenario.backends}

    def run_instant(self, t: int, actions: Sequence[m.Action]) -> list[m.Outcome]:
        if not self.scenario.failures:
            instant = self.policy.run_instant(t, actions, log=False)
            self._started(instant.started)
            return instant.outcomes
        reports = self._due_reports(t)
        actions = reports + [self._unknown_end(a) for a in actions]
        instant = self.policy.run_instant(t, actions, log=False)
        self._started(instant.started)
        while late := self._due_reports(t):  # jobs that started at t and failed at once
            self._started(self.policy.run_instant(t, late, log=False).started)
        return instant.outcomes[len(reports) :]

    def _due_reports(self, t: int) -> list[m.Action]:
        reports = self._reports
        due: list[m.Action] = []
        while reports and reports[0][0] <= t:
            job = heapq.heappop(reports)[1]
            due.append(m.FinishJob(job, m.FAILED, self.scenario.failures[job]))
        return due

    def _unknown_end(self, action: m.Action) -> m.Action:
        if not isinstance(action, m.Submit) or action.job not in self.scenario.failures:
            return action
        if action.duration is not None:
            self._runs[action.job] = action.duration
        modeled = action.duration if action.expected is None else action.expected
        return replace(action, duration=None, expected=modeled)

    def _started(self, jobs: Iterable[m.Job]) -> None:
        for job in jobs:
            assert job.started_at is not None
            self.starts[job.backend].append((job.started_at, job.id))
            run = self._runs.get(job.id)
            if run is not None:
                heapq.heappush(self._reports, (job.started_at + run, job.id))

    def next_due(self) -> int | None:
        due = self.policy.next_due()
        reports = self._reports
        while reports and self.policy.jobs[reports[0][1]].status != m.RUNNING:
            heapq.heappop(reports)  # cancelled or failed at its limit before its report
        if reports and (due is None or reports[0][0] < due):
            return reports[0][0]
        return due

    @property
    def last_activity(self) -> int | None:
        return self.policy.last_activity

    def final_state(self, end_time: int) -> FinalState:
        totals = self.policy.usage.totals_at(end_time)  # allocations may look past end_time
        return FinalState(
            self.policy.jobs, self.policy.sessions, self.starts, lambda node: totals.get(node, 0)
        )
