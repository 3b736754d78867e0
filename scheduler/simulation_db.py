"""`simulate --engine db`: the scenario driven through the live leader's code.

One `engine.Leader` on the scenario's clock applies each instant's events in one
step, with the incremental writes the live scheduler makes, in a scratch
database created and dropped for the run. The trace is read back from the
database.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from django.conf import settings as django_settings
from django.db import connection
from django.db.models import Sum
from django.test.utils import setup_databases, teardown_databases

from scheduler import engine, models
from scheduler.clock import from_ticks, ticks_span, to_ticks
from scheduler.policy import model as m
from scheduler.simulation import FinalState, Scenario, ScenarioError, write_trace

CHUNK = 1_000  # scenario actions one step applies, at most (a batch of one instant may exceed it)


class DbEngine:
    """Runs a scenario through one long-lived leader, one step (transaction) per instant."""

    def __init__(self, scenario: Scenario) -> None:
        if any(isinstance(a, m.PutReservation) for _, a in scenario.events):
            # The live engine reads a reservation's window from its row (an operator's change).
            raise ScenarioError("put_reservation: not supported by the db engine")
        if scenario.failures:
            raise ScenarioError("fails: not supported by the db engine")
        self.scenario = scenario
        self.leader = engine.Leader(settings=scenario.settings)
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
            engine.instances_ensure(path=node)
            models.Instance.objects.filter(path=node).update(share=share)
        for instance in scenario.instances:
            engine.instances_ensure(path=instance)
        for instance, used in scenario.usage.items():
            models.UsageCharge.objects.create(
                instance=engine.instances_ensure(path=instance),
                kind=models.UsageCharge.Kind.PRIOR,
                microseconds=used,
                ended_at=from_ticks(0),
            )
        backends = {b.name: b for b in models.Backend.objects.all()}
        for r in scenario.reservations:
            models.Reservation.objects.create(
                backend=backends[r.backend],
                instance=engine.instances_ensure(path=r.instance),
                start=from_ticks(r.start),
                end=from_ticks(r.end),
                exclusive=r.exclusive,
                note=r.id,
            )
        self.leader.load(0)

    def run(self, *, chunk: int = CHUNK) -> dict[str, Any]:
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
        i = 0
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
    sessions: dict[int, m.Session] = {}
    for row in models.Session.objects.select_related("backend", "instance"):
        session = m.Session(
            id=row.uid,
            backend=row.backend.name,
            instance=row.instance.path,
            created_at=to_ticks(row.created_at),
            seq=row.pk,
            interactive_ttl=0,
            mode=row.mode,
            state=row.state,
            closed_reason=row.closed_reason or None,
        )
        sessions[row.pk] = session
    for event in models.Event.objects.filter(
        kind__in=["session_created", "session_state"]
    ).order_by("id"):
        state = m.OPEN if event.kind == "session_created" else event.detail["state"]
        assert event.session_id is not None
        sessions[event.session_id].history.append((to_ticks(event.at), state))
    jobs = {
        row.uid: engine.job_from_row(row, sessions.get(row.session_id or 0))
        for row in models.Job.objects.select_related("backend", "instance").only(
            *engine.JOB_COLUMNS
        )
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
    cutoff = from_ticks(end_time - usage_window)
    totals = dict(
        models.UsageCharge.objects.filter(ended_at__gt=cutoff, ended_at__lte=from_ticks(end_time))
        .values("instance__path")
        .annotate(total=Sum("microseconds"))
        .values_list("instance__path", "total")
    )
    return FinalState(
        jobs=jobs,
        sessions={s.id: s for s in sessions.values()},
        starts=starts,
        usage=lambda instance: int(totals.get(instance, 0)),
    )


def _ticks(moment: Any) -> int | None:
    return None if moment is None else to_ticks(moment)


def run_on_scratch_database(scenario: Scenario) -> dict[str, Any]:
    """Simulate on a fresh database of the configured kind, dropped afterwards."""
    test_settings = django_settings.DATABASES["default"].setdefault("TEST", {})
    # SQLite: in memory (the simulation runs in one thread); others: a database of its own.
    sqlite = connection.vendor == "sqlite"
    test_settings["NAME"] = ":memory:" if sqlite else f"qdash_simulate_{os.getpid()}"
    old = setup_databases(verbosity=0, interactive=False, aliases={"default": 1})
    if not sqlite:  # a scratch database: commits need not wait for the disk
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit = off")
    try:
        return DbEngine(scenario).run()
    finally:
        teardown_databases(old, verbosity=0)
