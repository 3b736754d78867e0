"""Queue position and estimated start (docs/rules.md): replay the rules forward."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from .core import Policy
from .model import QUEUED, RUNNING


@dataclass(frozen=True, slots=True)
class Estimate:
    """Where a queued job stands: its rank on its backend (1 = next) and when it starts.

    Both are None when the replay never starts the job (a paused backend, or a
    session that expires first).
    """

    position: int | None
    start: int | None


def estimate(policy: Policy, now: int) -> dict[str, Estimate]:
    """Replay `policy` from `now` with nothing new arriving; estimate every queued job."""
    queued = {job_id for job_id, job in policy.jobs.items() if job.status == QUEUED}
    if not queued:
        return {}
    replay = copy.deepcopy(policy)
    replay.events = []
    replay.record = True
    replay.usage.new = None
    start = max(now, policy.now) if policy.now is not None else now
    _assume_modeled_durations(replay, start)
    order: dict[str, list[tuple[int, str]]] = {}
    pending = set(queued)
    t: int | None = start
    while t is not None and pending:
        replay.run_instant(t)
        for event in replay.events:
            if event.kind == "job_started" and event.subject.id in pending:
                order.setdefault(event.subject.backend, []).append((event.at, event.subject.id))
            if event.kind in ("job_started", "job_ended"):
                pending.discard(event.subject.id)
        replay.events.clear()
        t = replay.next_due()
    result = {job_id: Estimate(None, None) for job_id in queued}
    for starts in order.values():
        for position, (start, job_id) in enumerate(starts, 1):
            result[job_id] = Estimate(position, start)
    return result


def _assume_modeled_durations(replay: Policy, now: int) -> None:
    """Jobs that run until reported finished take their modeled time in the replay."""
    for job in replay.jobs.values():
        if job.duration is not None or job.expected is None:
            continue
        if job.status == QUEUED:
            job.duration = job.expected
        elif job.status == RUNNING and job.started_at is not None:
            # Still running past its modeled end: assume it ends now.
            job.duration = max(job.expected, now - job.started_at)
            replay.reschedule_end(job)
