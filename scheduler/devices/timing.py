"""The timing model: the QPU time a job holds its backend, fixed when it is submitted.

    per-job overhead
  + compile time × the job's circuit structures its session has not compiled yet
  + executions × (the backend's shot time + one shot of the circuit on the device)

A job in a session reuses what the session's earlier jobs compiled (the same
structure with any parameter values), so repeat jobs in a session cost less and
finish sooner (docs/rules.md, "Modeled QPU time").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q, Sum

from scheduler import models
from scheduler.devices.checks import CircuitRun
from scheduler.policy import model as m


@dataclass(frozen=True)
class Timing:
    duration: timedelta  # the modeled QPU time
    keys: list[str]  # the job's distinct circuit structures, in order
    cached: int  # how many of them the session had compiled already
    saved: timedelta  # the compile time that saved


def job_timing(
    *, backend: models.Backend, runs: Iterable[CircuitRun], cached_keys: set[str]
) -> Timing:
    """The modeled QPU time of a job of `runs` on `backend`, given the session's cache."""
    runs = list(runs)
    keys = list(dict.fromkeys(run.key for run in runs))
    hits = sum(1 for key in keys if key in cached_keys)
    executions = sum(run.executions for run in runs)
    device_us = round(sum(run.executions * run.shot_seconds for run in runs) * 1e6)
    duration = (
        backend.job_overhead
        + backend.compile_time * (len(keys) - hits)
        + backend.shot_time * executions
        + timedelta(microseconds=device_us)
    )
    return Timing(duration, keys, hits, backend.compile_time * hits)


def session_cache(session: models.Session | None) -> set[str]:
    """The circuit structures a session's jobs compiled or will compile before the next one:
    every job of it but those that ended without starting (cancelled, refused)."""
    if session is None or session.pk is None:
        return set()
    never_ran = Q(status__in=[m.CANCELLED, m.FAILED], started_at__isnull=True)
    cached: set[str] = set()
    for keys in session.jobs.exclude(never_ran).values_list("circuit_keys", flat=True):
        cached.update(keys or [])
    return cached


def saved_by_backend(
    *, since: datetime, backend_ids: Iterable[int] | None = None
) -> dict[int, timedelta]:
    """Compile time sessions' caches saved, per backend id, for jobs submitted since `since`."""
    jobs = models.Job.objects.filter(submitted_at__gte=since, cached_circuits__gt=0)
    if backend_ids is not None:
        jobs = jobs.filter(backend_id__in=list(backend_ids))
    totals = jobs.values("backend_id").annotate(saved=Sum("cache_saved")).order_by()
    return {row["backend_id"]: row["saved"] or timedelta(0) for row in totals}
