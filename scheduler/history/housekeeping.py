"""The leader's idle housekeeping: roll up a closed day, prune a small batch.

`Scheduler.run()` (scheduler/engine/loop.py) calls `Housekeeping.run` only when nothing
is due for a while; each call does one small piece (one day's rollup, or one batch of
`IDLE_BATCH` jobs under QDASH_RETENTION_DAYS) so a wake-up waits at most that long.
With nothing left to do it rests `REST_SECONDS` before looking again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings

from scheduler.history import prune, rollups

log = logging.getLogger(__name__)
IDLE_BATCH = 200  # jobs per idle prune batch
REST_SECONDS = 60.0  # how long to rest once everything is done


class Housekeeping:
    def __init__(
        self,
        *,
        retention_days: float | None = None,
        archive_dir: Path | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retention_days = retention_days
        self.archive_dir = archive_dir
        self.monotonic = monotonic
        self.rest_until = 0.0
        self.days_rolled = 0
        self.jobs_pruned = 0

    @classmethod
    def from_settings(cls) -> Housekeeping:
        days = float(str(settings.QDASH_HISTORY["RETENTION_DAYS"]))
        archive = str(settings.QDASH_HISTORY["ARCHIVE_DIR"])
        return cls(retention_days=days or None, archive_dir=Path(archive) if archive else None)

    def due(self) -> bool:
        return self.monotonic() >= self.rest_until

    def run(self, now: datetime) -> bool:
        """One small piece of housekeeping at `now`; whether it did any (more may be left)."""
        if not self.due():
            return False
        if rollups.next_day(now) is not None:
            self.days_rolled += rollups.roll(now, limit=1)
            return True
        if self.retention_days:
            pruned = prune.prune(
                older_than=timedelta(days=self.retention_days),
                archive_dir=self.archive_dir,
                now=now,
                batch=IDLE_BATCH,
                limit=IDLE_BATCH,
                roll_limit=0,
            )
            if pruned.jobs:
                self.jobs_pruned += pruned.jobs
                log.info("retention: pruned %d jobs (archive %s)", pruned.jobs, pruned.archive)
                return True
        self.rest_until = self.monotonic() + REST_SECONDS
        return False
