"""Pruning: finished jobs leave the live tables for a compressed archive, in batches, as
slurmdbd archives and purges (docs/history.md).

Each batch is archived first (one gzip member of JSON lines, flushed and fsynced),
then deleted in one transaction: an interruption between batches loses nothing, and
one inside a batch leaves its jobs in the database (archived maybe twice, never lost).
Only final jobs go, only once their day is rolled up (the rollups stay), never one
with an input the leader has not applied. A job's usage charges stay while a
fair-share window or an allocation's period still counts them (`charge_horizon`).
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet

from scheduler import models
from scheduler.allocations import allocation_of
from scheduler.clock import from_ticks, to_ticks
from scheduler.history import rollups
from scheduler.policy.allocations import counts_from
from scheduler.rule_settings import deployment_settings

BATCH = 2_000  # jobs per batch for the command; the leader's idle pruning takes fewer


@dataclass
class Pruned:
    jobs: int = 0
    events: int = 0
    charges: int = 0
    batches: int = 0
    archive: Path | None = None
    kept_charges: int = 0  # charges of pruned jobs still counted by a window or period
    notes: list[str] = field(default_factory=list)


def charge_horizon(now: datetime) -> datetime:
    """The earliest end of a charge that the fair-share window or an allocation's
    current period counts at `now`: charges that ended before it may go."""
    t = to_ticks(now)
    window = deployment_settings().usage_window
    floors = [t - window + 1]
    for row in models.Allocation.objects.select_related("instance"):
        floor = counts_from(allocation_of(row), window, t)
        if floor is not None:
            floors.append(floor)
    return from_ticks(min(floors))


def prunable(cutoff: datetime) -> QuerySet[models.Job]:
    """Final jobs that ended before `cutoff` and whose day is rolled up, oldest first."""
    rolled = rollups.rolled_until()
    if rolled is None:
        return models.Job.objects.none()
    before = min(cutoff, rollups.day_start(rolled))
    pending = models.Input.objects.filter(job=OuterRef("pk"))
    return (
        models.Job.objects.filter(status__in=rollups.FINAL, ended_at__lt=before)
        .exclude(Exists(pending))
        .order_by("ended_at", "id")
    )


class Archive:
    """An archive file of JSON lines, one gzip member per batch, fsynced per batch."""

    def __init__(self, directory: Path, now: datetime) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"qdash-jobs-{now.astimezone(UTC):%Y%m%dT%H%M%S%fZ}.jsonl.gz"
        self._file: IO[bytes] = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        _fsync_dir(directory)

    def write(self, lines: list[str]) -> None:
        """One batch: its JSON lines as one gzip member, on disk before this returns."""
        text = "".join(line + "\n" for line in lines)
        self._file.write(gzip.compress(text.encode(), compresslevel=6))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_archive(path: Path) -> list[dict[str, Any]]:
    """Every record of an archive file (its members in order)."""
    with gzip.open(path, "rt") as lines:
        return [json.loads(line) for line in lines]


def _records(ids: list[int]) -> list[dict[str, Any]]:
    jobs = models.Job.objects.filter(id__in=ids).order_by("id")
    names = dict(models.Backend.objects.values_list("pk", "name"))
    paths = dict(models.Instance.objects.values_list("pk", "path"))
    events: dict[int, list[dict[str, Any]]] = {}
    for event in models.Event.objects.filter(job_id__in=ids).order_by("id").values():
        events.setdefault(event["job_id"], []).append(dict(event))
    charges: dict[int, list[dict[str, Any]]] = {}
    for charge in models.UsageCharge.objects.filter(job_id__in=ids).order_by("id").values():
        charges.setdefault(charge["job_id"], []).append(dict(charge))
    sessions = dict(
        models.Session.objects.filter(jobs__id__in=ids).values_list("pk", "uid").distinct()
    )
    out = []
    for row in jobs.values():
        job: dict[str, Any] = dict(row)
        job["backend"] = names.get(job["backend_id"])
        job["instance"] = paths.get(job["instance_id"])
        job["session"] = sessions.get(job["session_id"])
        out.append(
            {
                "job": job,
                "events": events.get(job["id"], []),
                "charges": charges.get(job["id"], []),
            }
        )
    return out


# PostgreSQL builds a batch's lines itself: the job row with its names, its events and
# its charges, one JSON object per job (the same keys as `_records`).
PG_LINES = """
SELECT (jsonb_build_object('job', to_jsonb(j) || jsonb_build_object(
    'backend', b.name, 'instance', i.path, 'session', s.uid),
  'events', COALESCE((SELECT jsonb_agg(to_jsonb(e) ORDER BY e.id) FROM scheduler_event e
    WHERE e.job_id = j.id), '[]'::jsonb),
  'charges', COALESCE((SELECT jsonb_agg(to_jsonb(c) ORDER BY c.id) FROM scheduler_usagecharge c
    WHERE c.job_id = j.id), '[]'::jsonb)))::text
FROM scheduler_job j JOIN scheduler_backend b ON b.id = j.backend_id
  JOIN scheduler_instance i ON i.id = j.instance_id
  LEFT JOIN scheduler_session s ON s.id = j.session_id
WHERE j.id = ANY(%s) ORDER BY j.id
"""
PG_DELETE = (
    "DELETE FROM scheduler_usagecharge WHERE job_id = ANY(%s) AND ended_at < %s",
    "UPDATE scheduler_usagecharge SET job_id = NULL WHERE job_id = ANY(%s)",
    "DELETE FROM scheduler_event WHERE job_id = ANY(%s)",
    "DELETE FROM scheduler_execution WHERE job_id = ANY(%s)",
    "DELETE FROM scheduler_job WHERE id = ANY(%s)",
)


def _lines(ids: list[int]) -> list[str]:
    """The archive's lines of jobs `ids`, in id order."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(PG_LINES, [ids])
            return [row[0] for row in cursor.fetchall()]
    return [json.dumps(r, cls=DjangoJSONEncoder, sort_keys=True) for r in _records(ids)]


def _delete_pg(ids: list[int], horizon: datetime, result: Pruned) -> None:
    counts = []
    with connection.cursor() as cursor:
        for n, sql in enumerate(PG_DELETE):
            cursor.execute(sql, [ids, horizon] if n == 0 else [ids])
            counts.append(cursor.rowcount)
    result.charges += counts[0]
    result.kept_charges += counts[1]
    result.events += counts[2]
    result.jobs += counts[4]


def prune_batch(ids: list[int], archive: Archive | None, horizon: datetime, result: Pruned) -> None:
    """Archive the jobs `ids`, then delete them with their events and their charges that
    ended before `horizon`, in one transaction."""
    with transaction.atomic():
        if archive is not None:
            archive.write(_lines(ids))
        if connection.vendor == "postgresql":
            _delete_pg(ids, horizon, result)
            result.batches += 1
            return
        charges = models.UsageCharge.objects.filter(job_id__in=ids)
        result.charges += charges.filter(ended_at__lt=horizon)._raw_delete(charges.db)
        result.kept_charges += charges.update(job=None)
        events = models.Event.objects.filter(job_id__in=ids)
        result.events += events._raw_delete(events.db)
        executions = models.Execution.objects.filter(job_id__in=ids)
        executions._raw_delete(executions.db)
        jobs = models.Job.objects.filter(id__in=ids)
        result.jobs += jobs._raw_delete(jobs.db)
        result.batches += 1


def prune(
    *,
    older_than: timedelta,
    archive_dir: Path | None,
    now: datetime,
    batch: int = BATCH,
    limit: int | None = None,
    roll_limit: int | None = None,
    advance: Callable[[int], object] = lambda done: None,
) -> Pruned:
    """Prune final jobs that ended more than `older_than` before `now`, `batch` at a time
    (at most `limit` jobs); rolls up the days they ended in first (at most `roll_limit`
    days: only jobs of rolled days go)."""
    cutoff = now - older_than
    rollups.roll(now, through=cutoff.astimezone(UTC).date() + timedelta(days=1), limit=roll_limit)
    horizon = charge_horizon(now)
    result = Pruned()
    archive = Archive(archive_dir, now) if archive_dir is not None else None
    result.archive = archive.path if archive else None
    try:
        while limit is None or result.jobs < limit:
            size = batch if limit is None else min(batch, limit - result.jobs)
            ids = list(prunable(cutoff).values_list("id", flat=True)[:size])
            if not ids:
                break
            prune_batch(ids, archive, horizon, result)
            advance(result.jobs)
    finally:
        if archive is not None:
            archive.close()
            if result.jobs == 0 and archive.path.stat().st_size == 0:
                archive.path.unlink()
                result.archive = None
    return result
