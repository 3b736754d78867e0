"""The trace (docs/simulate.md): what a finished run did, as one JSON document.

Every engine hands its final state to `write_trace`; the replay writes the live
run's trace with it too, so traces compare field by field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scheduler.clock import exact_seconds
from scheduler.policy import model as m
from scheduler.sim.scenario import Scenario


@dataclass
class FinalState:
    """What a finished run hands to the trace writer."""

    jobs: Mapping[str, m.Job]
    sessions: Mapping[str, m.Session]
    starts: Mapping[str, list[tuple[int, str]]]  # backend -> (time, job) in start order
    usage: Callable[[str], int]  # instance -> usage at the end time


def write_trace(
    scenario: Scenario,
    final: FinalState,
    refused: Mapping[str, tuple[int, m.Submit, str]],
    end_time: int,
) -> dict[str, Any]:
    """The trace document of docs/simulate.md."""
    jobs: dict[str, Any] = {}
    for _, action in scenario.events:
        if not isinstance(action, m.Submit):
            continue
        if action.job in refused:
            at, _, code = refused[action.job]
            jobs[action.job] = {
                "status": "Rejected",
                "backend": action.backend,
                "session": action.session,
                "lane": None,
                "submitted_at": exact_seconds(at),
                "started_at": None,
                "ended_at": None,
                "error": code,
            }
            continue
        job = final.jobs[action.job]
        jobs[action.job] = {
            "status": job.status,
            "backend": job.backend,
            "session": job.session_id,
            "lane": job.lane,
            "submitted_at": exact_seconds(job.submitted_at),
            "started_at": exact_seconds(job.started_at),
            "ended_at": exact_seconds(job.ended_at),
            "error": job.error,
        }
    ordered = sorted(final.sessions.items(), key=lambda item: (item[1].created_at, item[1].seq))
    sessions = {
        name: {
            "backend": s.backend,
            "instance": s.instance,
            "state": s.state,
            "closed_reason": s.closed_reason,
            "history": [[exact_seconds(at), state] for at, state in s.history],
        }
        for name, s in ordered
    }
    return {
        "jobs": jobs,
        "sessions": sessions,
        "starts": {
            b.name: [[exact_seconds(at), job] for at, job in final.starts.get(b.name, [])]
            for b in scenario.backends
        },
        "usage": {
            instance: exact_seconds(final.usage(instance)) for instance in scenario.instances
        },
        "end_time": exact_seconds(end_time),
    }


def dump_trace(trace: Mapping[str, Any], path: str | Path) -> None:
    # Indented for reading; compact (and several times faster) for large traces.
    indent = 1 if len(trace["jobs"]) <= 10_000 else None
    Path(path).write_text(json.dumps(trace, indent=indent) + "\n")
