"""`manage.py prune --older-than DAYS [--archive DIR]`: finished jobs leave the
database for a compressed archive, as slurmdbd archives and purges (docs/history.md).

Each batch is archived (gzip JSON lines: the job with its params and result, its
events and charges), fsynced, then deleted. Rollups stay, and so do the charges a
fair-share window or an allocation period still counts. Bad input is one line on
stderr and exit status 2.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from scheduler.history import prune, rollups
from scheduler.management.oneline import one_line_errors
from scheduler.progress import feedback


class Command(BaseCommand):
    help = "Archive, then delete, finished jobs older than DAYS days."

    def add_arguments(self, parser: CommandParser) -> None:
        one_line_errors(parser)
        parser.add_argument("--older-than", required=True, type=float, metavar="DAYS")
        parser.add_argument("--archive", type=Path, metavar="DIR", help="archive here first")
        parser.add_argument("--batch", type=int, default=prune.BATCH, help="jobs per batch")
        parser.add_argument("--quiet", action="store_true", help="no progress, no summary")

    def _fail(self, message: str) -> NoReturn:
        self.stderr.write(f"prune: {message}")
        sys.exit(2)

    def handle(self, *args: Any, **options: Any) -> None:
        days, archive = options["older_than"], options["archive"]
        if not days >= 1:
            self._fail(f"--older-than must be at least 1 day, not {days:g}")
        if options["batch"] < 1:
            self._fail("--batch must be at least 1")
        if archive is not None and archive.exists() and not archive.is_dir():
            self._fail(f"--archive: {archive} is not a directory")
        now = timezone.now()
        with feedback("rolling up closed days", quiet=options["quiet"]) as progress:
            rollups.roll(now, advance=progress.advance)
        total = prune.prunable(now - timedelta(days=days)).count()
        with feedback("pruning", total or None, quiet=options["quiet"]) as progress:
            result = prune.prune(
                older_than=timedelta(days=days),
                archive_dir=archive,
                now=now,
                batch=options["batch"],
                advance=progress.advance,
            )
        if options["quiet"]:
            return
        where = f"archived to {result.archive}" if result.archive else "no archive"
        self.stdout.write(
            f"pruned {result.jobs:,} jobs ({result.events:,} events, {result.charges:,} "
            f"charges; {result.kept_charges:,} charges kept for a window or period) in "
            f"{result.batches} batches, {where}; {progress.seconds:.1f} s"
        )
