"""Run both futures from the live state and put the answer in page- and JSON-ready form.

The live state is loaded as a new leader would load it (`scheduler.snapshot`), never
the running leader's memory: the futures replay copies of that snapshot with the
pure rules (`scheduler.policy.futures`), so nothing here can change the queue.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.utils import timezone

from scheduler import models
from scheduler.clock import from_ticks, seconds_ticks, ticks_seconds, to_ticks
from scheduler.policy import futures, outcomes
from scheduler.policy import model as m
from scheduler.policy.allocations import counts_from
from scheduler.rule_settings import deployment_settings
from scheduler.snapshot import live_state
from scheduler.whatif.changes import Proposed

MAX_HOURS = 24.0
HOUR_TICKS = seconds_ticks(3600)
SIDES = ("without", "with")


@dataclass(frozen=True, kw_only=True)
class Report:
    """Both futures, side by side."""

    now: datetime
    end: datetime
    hours: float
    seed: int
    changes: list[Proposed]
    known_queued: int
    known_running: int
    synthetic: int
    nodes: list[dict[str, Any]]
    backends: list[dict[str, Any]]
    sessions: list[dict[str, Any]]
    timeline: dict[str, Any]
    attribution: dict[str, Any]
    seconds: float  # time the run took (snapshot included)


class Futures(NamedTuple):
    """Both futures, and what was known at their start."""

    queued: int  # jobs queued at `now`
    running: int  # jobs running at `now`
    without: futures.Future
    with_: futures.Future


def whatif_futures(
    *,
    changes: Sequence[Proposed],
    hours: float,
    seed: int,
    now: datetime,
    phase: Callable[[str], None] | None = None,
) -> Futures:
    """The futures of the live state at `now` over `hours`, without and with `changes`;
    `phase(name)` hears each step as it begins."""
    if not 0 < hours <= MAX_HOURS:
        raise ValueError(f"the horizon must be more than 0 and at most {MAX_HOURS:g} hours")
    say = phase or (lambda name: None)
    say("reading the live state")
    start = to_ticks(now)
    policy, overheads = live_state(now, since=_counted_from(changes, start))
    scenario = futures.Scenario(
        now=start,
        end=start + round(hours * HOUR_TICKS),
        hour=HOUR_TICKS,
        loads=tuple(p.load for p in changes if p.load is not None),
        overheads=overheads,
        seed=seed,
    )
    queued = sum(1 for job in policy.jobs.values() if job.status == m.QUEUED)
    running = sum(1 for b in policy.backends.values() if b.running is not None)
    say(f"replaying both futures of {queued:,} queued jobs")
    without, with_ = futures.compare(
        policy,
        scenario,
        [p.change for p in changes if p.change is not None],
        in_place=True,  # the snapshot is this call's own
    )
    return Futures(queued, running, without, with_)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """The replays allocate hundreds of thousands of objects and free none before they
    end: passes of the cyclic collector over them are wasted time (a tenth to a third of
    a run). It runs again afterwards, as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def whatif_run(
    *,
    changes: Sequence[Proposed],
    hours: float,
    seed: int,
    now: datetime,
    phase: Callable[[str], None] | None = None,
) -> Report:
    """Both futures of the live state at `now`, over `hours`, without and with `changes`."""
    clock = time.perf_counter()
    with _no_cycle_collection():
        return _report(changes, hours, seed, now, clock, phase)


def _report(
    changes: Sequence[Proposed],
    hours: float,
    seed: int,
    now: datetime,
    clock: float,
    phase: Callable[[str], None] | None,
) -> Report:
    known = whatif_futures(changes=changes, hours=hours, seed=seed, now=now, phase=phase)
    if phase is not None:
        phase("comparing")
    without, with_ = known.without, known.with_
    nodes = outcomes.node_rows(without, with_)
    return Report(
        now=now,
        end=from_ticks(with_.end),
        hours=hours,
        seed=seed,
        changes=list(changes),
        known_queued=known.queued,
        known_running=known.running,
        synthetic=sum(1 for job in without.jobs if job.synthetic),
        nodes=[_node(row) for row in nodes],
        backends=_backends(without, with_),
        sessions=_sessions(without, with_),
        timeline=_timeline(without, with_),
        attribution=_attribution(nodes),
        seconds=time.perf_counter() - clock,
    )


def _seconds(ticks: int | None) -> float | None:
    return None if ticks is None else ticks_seconds(ticks)


def _stats(stats: outcomes.WaitStats) -> dict[str, Any]:
    return {
        "waiting": stats.waiting,
        "started": stats.started,
        "still_queued": stats.still_queued,
        "ended_unstarted": stats.ended_unstarted,
        "p50": _seconds(stats.p50),
        "p95": _seconds(stats.p95),
        "p50_at_least": stats.p50_at_least,
        "p95_at_least": stats.p95_at_least,
        "queued_seconds": ticks_seconds(stats.queued_time),
    }


def _node(row: outcomes.NodeRow) -> dict[str, Any]:
    out: dict[str, Any] = {"node": row.node, "depth": row.depth}
    for origin in outcomes.ORIGINS:
        pair = [_stats(stats) for stats in row.stats[origin]]
        out[origin] = {
            "without": pair[0],
            "with": pair[1],
            "delta_started": pair[1]["started"] - pair[0]["started"],
            "delta_queued_seconds": ticks_seconds(row.delta_queued_time(origin)),
        }
    return out


def _attribution(nodes: list[outcomes.NodeRow]) -> dict[str, Any]:
    """How much of the difference comes from known jobs and how much from synthetic ones
    (summed over projects, so no job counts twice)."""
    projects = [row for row in nodes if row.depth == 2]
    out: dict[str, Any] = {}
    for origin in (outcomes.KNOWN, outcomes.SYNTHETIC):
        started = [sum(row.stats[origin][side].started for row in projects) for side in (0, 1)]
        out[origin] = {
            "delta_queued_seconds": ticks_seconds(
                sum(row.delta_queued_time(origin) for row in projects)
            ),
            "delta_started": started[1] - started[0],
        }
    return out


def _use(use: outcomes.BackendUse) -> dict[str, Any]:
    return {
        "status": use.status,
        "utilisation": use.utilisation,
        "started": use.started,
        "busy_seconds": ticks_seconds(use.busy),
        "idle_seconds": ticks_seconds(use.idle),
        "exclusive_idle_seconds": ticks_seconds(use.exclusive_idle),
        "held_seconds": ticks_seconds(use.held),
        "paused_seconds": ticks_seconds(use.paused),
    }


def _backends(without: futures.Future, with_: futures.Future) -> list[dict[str, Any]]:
    uses = [outcomes.backend_use(future) for future in (without, with_)]
    return [
        {"backend": name, "without": _use(uses[0][name]), "with": _use(uses[1][name])}
        for name in sorted(uses[0])
    ]


def _fate(run: futures.SessionRun) -> dict[str, Any]:
    newly_bound = run.bound is not None and run.bound != run.bound_before
    return {
        "bound": run.bound if newly_bound else None,
        "bound_at": _moment(run.bound_at),
        "closed_at": _moment(run.closed_at),
        "closed_reason": run.closed_reason,
        "ttl_deadline": _moment(run.ttl_deadline),
    }


def _sessions(without: futures.Future, with_: futures.Future) -> list[dict[str, Any]]:
    fates = outcomes.session_fates(without, with_)
    owners = dict(
        models.Session.objects.filter(uid__in=[f.id for f in fates]).values_list(
            "uid", "owner__username"
        )
    )
    return [
        {
            "session": fate.id,
            "instance": fate.instance,
            "backend": fate.backend,
            "state": fate.state,
            "owner": owners.get(fate.id) or "",
            "without": _fate(fate.fates[0]),
            "with": _fate(fate.fates[1]),
        }
        for fate in fates
    ]


def _moment(ticks: int | None) -> datetime | None:
    return None if ticks is None else from_ticks(ticks)


def _wall(ticks: int) -> str:
    """A moment as the server's wall-clock time: the page shows every time in its zone."""
    return timezone.localtime(from_ticks(ticks)).strftime("%Y-%m-%d %H:%M:%S.%f")


def _timeline(without: futures.Future, with_: futures.Future) -> dict[str, Any]:
    """Chart data: per backend, each future's busy spans and windows, on one time axis."""
    bars = [outcomes.timeline(future) for future in (without, with_)]
    backends = {}
    for name in sorted(without.backends):
        backends[name] = {
            side: {
                "spans": [
                    {
                        "start": _wall(s.start),
                        "ms": (s.end - s.start) / 1000,
                        "lane": s.lane,
                        "jobs": s.jobs,
                        "synthetic": s.synthetic,
                        "instances": s.instances,
                    }
                    for s in bars[i][name]
                ],
                "windows": [
                    {
                        "start": _wall(w.start),
                        "end": _wall(w.end),
                        "instance": w.instance,
                        "exclusive": w.exclusive,
                    }
                    for w in future.backends[name].windows
                ],
                "paused": future.backends[name].status != m.ONLINE,
            }
            for i, (side, future) in enumerate(zip(SIDES, (without, with_), strict=True))
        }
    return {
        "start": _wall(without.now),
        "end": _wall(without.end),
        "backends": backends,
    }


def report_json(report: Report) -> dict[str, Any]:
    """The report as plain JSON values (times in ISO 8601, durations in seconds)."""
    return {
        "now": report.now.isoformat(),
        "end": report.end.isoformat(),
        "hours": report.hours,
        "seed": report.seed,
        "changes": [{"change": p.spec, "summary": p.summary} for p in report.changes],
        "known": {"queued": report.known_queued, "running": report.known_running},
        "synthetic_jobs": report.synthetic,
        "attribution": report.attribution,
        "instances": report.nodes,
        "backends": report.backends,
        "sessions": [_json_times(row) for row in report.sessions],
        "seconds": round(report.seconds, 3),
    }


def _json_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json_times(item) for key, item in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def _counted_from(changes: Sequence[Proposed], now: int) -> int | None:
    """The earliest charge a proposed allocation counts at `now` (None: none proposed)."""
    window = deployment_settings().usage_window
    since = [
        counts_from(allocation, window, now)
        for p in changes
        if isinstance(p.change, m.PutAllocation) and (allocation := p.change.allocation())
    ]
    if not since:
        return None
    return min([now - window + 1, *(s for s in since if s is not None)])
