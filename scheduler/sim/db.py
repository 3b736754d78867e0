"""`simulate --engine db`: the scenario driven through the live leader's code.

One leader (`engine.step.Leader`) on the scenario's clock applies each instant's events in one
step, with the incremental writes the live scheduler makes, in a scratch
database created and dropped for the run. The trace is read back from the
database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from django.conf import settings as django_settings
from django.db import connection
from django.test.utils import setup_databases, teardown_databases

from scheduler import allocations, models, services
from scheduler.clock import from_ticks, ticks_span, to_ticks
from scheduler.engine.rows import JOB_COLUMNS, job_from_row, session_from_row
from scheduler.engine.step import Leader
from scheduler.policy import model as m
from scheduler.sim.scenario import Scenario, ScenarioError
from scheduler.sim.trace import FinalState, write_trace
from scheduler.usage import usage_in_window

CHUNK = 1_000  # scenario actions one step applies, at most (a batch of one instant may exceed it)
UNSUPPORTED: dict[str, type] = {
    "put_reservation": m.PutReservation,
    "remove_reservation": m.RemoveReservation,
    "set_share": m.SetShare,
    "backend_max_runtime": m.PutBackend,
}


class DbEngine:
    """Runs a scenario through one long-lived leader, one step (transaction) per instant."""

    def __init__(self, scenario: Scenario) -> None:
        for kind, action in UNSUPPORTED.items():
            # Operators' changes of rows the leader only reads, but put_allocation.
            if any(isinstance(a, action) for _, a in scenario.events):
                raise ScenarioError(f"{kind}: not supported by the db engine")
        if scenario.failures:
            raise ScenarioError("fails: not supported by the db engine")
        self.scenario = scenario
        self.leader = Leader(settings=scenario.settings)
        self._seed()

    def _seed(self) -> None:
        scenario = self.scenario
        for backend in scenario.backends:
            models.Backend.objects.create(
                name=backend.name,
                status=backend.status,
                job_overhead=ticks_span(0),
                shot_time=ticks_span(0),
            )
        for node, share in scenario.shares.items():
            services.instances_ensure(path=node)
            models.Instance.objects.filter(path=node).update(share=share)
        for instance in scenario.instances:
            services.instances_ensure(path=instance)
        for instance, used in scenario.usage.items():
            models.UsageCharge.objects.create(
                instance=services.instances_ensure(path=instance),
                kind=models.UsageCharge.Kind.PRIOR,
                microseconds=used,
                ended_at=from_ticks(0),
            )
        for allocation in scenario.allocations:
            allocations.store(services.instances_ensure(path=allocation.node), allocation)
        backends = {b.name: b for b in models.Backend.objects.all()}
        for r in scenario.reservations:
            models.Reservation.objects.create(
                backend=backends[r.backend],
                instance=services.instances_ensure(path=r.instance),
                start=from_ticks(r.start),
                end=from_ticks(r.end),
                exclusive=r.exclusive,
                note=r.id,
            )
        self.leader.load(0)

    def run(
        self, *, chunk: int = CHUNK, progress: Callable[[int], None] | None = None
    ) -> dict[str, Any]:
        """The whole scenario: events in steps of about `chunk` actions (each applied
        at its own instant), then the tail in draining steps; the trace from the rows."""
        scenario = self.scenario
        batches: list[tuple[int, list[m.Action]]] = []
        for t, action in scenario.events:
            if scenario.until is not None and t > scenario.until:
                break
            if batches and batches[-1][0] == t:
                batches[-1][1].append(action)
            else:
                batches.append((t, [action]))
        refused: dict[str, tuple[int, m.Submit, str]] = {}
        i = applied = 0
        while i < len(batches):
            group: list[tuple[int, list[m.Action]]] = []
            size = 0
            while i < len(batches) and (not group or size + len(batches[i][1]) <= chunk):
                group.append(batches[i])
                size += len(batches[i][1])
                i += 1
            answers = iter(self.leader.step(group[-1][0], group).outcomes)
            for t, actions in group:
                for action in actions:
                    outcome = next(answers)
                    if isinstance(action, m.Submit) and not outcome.accepted:
                        refused[action.job] = (t, action, outcome.code or "")
            applied += size
            if progress is not None:
                progress(applied)
        until = scenario.until
        while (due := self.leader.next_due()) is not None:
            if until is not None:  # one instant per step, none past `until`
                if due > until:
                    break
                self.leader.step(due)
            else:
                self.leader.step(due, drain=True)
        last = [batches[-1][0]] if batches else []
        end = max([0, *last, *([self.last_activity] if self.last_activity is not None else [])])
        return write_trace(scenario, self.final_state(end), refused, end)

    def run_instant(self, t: int, actions: Sequence[m.Action]) -> list[m.Outcome]:
        return self.leader.step(t, [(t, actions)]).outcomes

    def next_due(self) -> int | None:
        return self.leader.next_due()

    @property
    def last_activity(self) -> int | None:
        policy = self.leader.policy
        return None if policy is None else policy.last_activity

    def final_state(self, end_time: int) -> FinalState:
        return final_state_from_rows(end_time, self.scenario.settings.usage_window)


def final_state_from_rows(end_time: int, usage_window: int) -> FinalState:
    """The jobs, sessions (with their history from the event log), starts and usage
    the database holds, as the trace writer takes them (times in ticks)."""
    sessions = {
        row.pk: session_from_row(row)
        for row in models.Session.objects.select_related("backend", "instance")
    }
    for event in models.Event.objects.filter(
        kind__in=["session_created", "session_state"]
    ).order_by("id"):
        state = m.OPEN if event.kind == "session_created" else event.detail["state"]
        assert event.session_id is not None
        sessions[event.session_id].history.append((to_ticks(event.at), state))
    jobs = {
        row.uid: job_from_row(row, sessions.get(row.session_id or 0))
        for row in models.Job.objects.select_related("backend", "instance").only(*JOB_COLUMNS)
    }
    starts: dict[str, list[tuple[int, str]]] = {}
    for event in (
        models.Event.objects.filter(kind="job_started")
        .select_related("job", "backend")
        .only("at", "job__uid", "backend__name")
        .order_by("id")
    ):
        assert event.job is not None and event.backend is not None
        starts.setdefault(event.backend.name, []).append((to_ticks(event.at), event.job.uid))
    totals = {
        path: used.total
        for path, used in usage_in_window(
            after=from_ticks(end_time - usage_window), through=from_ticks(end_time)
        ).items()
    }
    return FinalState(
        jobs=jobs,
        sessions={s.id: s for s in sessions.values()},
        starts=starts,
        usage=lambda instance: int(totals.get(instance, 0)),
    )


def run_on_scratch_database(
    scenario: Scenario, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Simulate on a fresh database of the configured kind, dropped afterwards;
    `progress(done)` hears how many events have been applied."""
    test_settings = django_settings.DATABASES["default"].setdefault("TEST", {})
    # SQLite: in memory (the simulation runs in one thread); others: a database of its own.
    sqlite = connection.vendor == "sqlite"
    test_settings["NAME"] = ":memory:" if sqlite else f"qdash_simulate_{os.getpid()}"
    old = setup_databases(verbosity=0, interactive=False, aliases={"default": 1})
    if not sqlite:  # a scratch database: commits need not wait for the disk
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")
    try:
        return DbEngine(scenario).run(progress=progress)
    finally:
        teardown_databases(old, verbosity=0)
