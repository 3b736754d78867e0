"""The two traces a replay compares: what the live run did, read from its rows on a
scenario's time axis, and what the memory engine does with the same scenario."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import transaction

from scheduler import models
from scheduler.clock import to_ticks
from scheduler.policy import model as m
from scheduler.sim.db import final_state_from_rows
from scheduler.sim.memory import MemoryEngine
from scheduler.sim.run import simulate
from scheduler.sim.scenario import parse_scenario
from scheduler.sim.trace import FinalState, write_trace


def live_trace(document: Mapping[str, Any]) -> dict[str, Any]:
    """What the live run did, in the trace format of docs/simulate.md, on the time
    axis of `document` (a scenario from `scenario_from_log`)."""
    scenario = parse_scenario(json.dumps(document))
    origin = to_ticks(datetime.fromisoformat(document["origin"]))
    assert scenario.until is not None
    end = origin + scenario.until
    with transaction.atomic():
        final = final_state_from_rows(end, scenario.settings.usage_window)
        refused = {
            uid: (to_ticks(at) - origin, None, detail.get("error") or m.SESSION_CLOSED)
            for uid, at, detail in models.Event.objects.filter(kind="job_refused").values_list(
                "job__uid", "at", "detail"
            )
        }
    named = {a.session for _, a in scenario.events if isinstance(a, m.CreateSession)}
    named -= set(  # created and refused: the rules made no session of it
        models.Event.objects.filter(kind="session_refused").values_list("session__uid", flat=True)
    )
    jobs = {}
    for uid, job in final.jobs.items():
        job.submitted_at -= origin
        job.started_at = None if job.started_at is None else job.started_at - origin
        job.ended_at = None if job.ended_at is None else job.ended_at - origin
        jobs[uid] = job
    sessions = {}
    for sid, session in final.sessions.items():
        if sid not in named:  # its creation is not applied yet
            continue
        session.created_at -= origin
        session.history = [(at - origin, state) for at, state in session.history]
        sessions[sid] = session
    starts = {
        name: [(at - origin, uid) for at, uid in started] for name, started in final.starts.items()
    }
    shifted = FinalState(jobs=jobs, sessions=sessions, starts=starts, usage=final.usage)
    return write_trace(scenario, shifted, refused, scenario.until)  # type: ignore[arg-type]


def replay_trace(document: Mapping[str, Any]) -> dict[str, Any]:
    """The memory engine's trace of `document`."""
    scenario = parse_scenario(json.dumps(document))
    return simulate(scenario, MemoryEngine(scenario))
