"""`manage.py usage_report --since DAY --until DAY --by day|week [--csv]`: the usage
page's rows, as Slurm's `sreport` prints utilisation (docs/history.md).

Closed days come from the daily rollups, the rest (today) from the raw rows. A table
(or the page's CSV with `--csv`) on stdout, then one summary line; bad input is one
line on stderr and exit status 2.
"""

from __future__ import annotations

import sys
from datetime import date
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandParser

from scheduler import models
from scheduler.history.forms import default_span, span_error
from scheduler.history.report import BY, COLUMNS, Report, usage_report
from scheduler.management.oneline import one_line_errors
from scheduler.progress import feedback


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a day (YYYY-MM-DD)") from None


HEADINGS = (
    "Period",
    "Instance",
    "Run s",
    "Hold s",
    "Done",
    "Failed",
    "Cancel",
    "Jobs",
    "Wait p50",
    "Wait p95",
)


def table(report: Report) -> list[str]:
    """The rows as a fixed-width table (numbers right-aligned), as `sreport` prints."""
    rows = [list(HEADINGS)] + [row.cells() for row in report.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


class Command(BaseCommand):
    help = "Print usage per instance and per day or week (QPU seconds, jobs, waits)."

    def add_arguments(self, parser: CommandParser) -> None:
        one_line_errors(parser)
        since, until = default_span()
        parser.add_argument("--since", default=since.isoformat(), help="first day (UTC)")
        parser.add_argument("--until", default=until.isoformat(), help="last day, included")
        parser.add_argument("--by", default="day", help="day or week")
        parser.add_argument("--instance", help="only this project instance")
        parser.add_argument("--csv", action="store_true", help="the page's CSV instead")
        parser.add_argument("--quiet", action="store_true", help="no progress, no summary")

    def _fail(self, message: str) -> NoReturn:
        self.stderr.write(f"usage_report: {message}")
        sys.exit(2)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            since, until = _day(options["since"]), _day(options["until"])
        except ValueError as error:
            self._fail(str(error))
        if options["by"] not in BY:
            self._fail(f"--by must be day or week, not {options['by']!r}")
        refused = span_error(since, until)
        if refused:
            self._fail(refused)
        instance = options["instance"]
        if instance and not models.Instance.objects.filter(path=instance).exists():
            self._fail(f"no instance {instance!r}")
        with feedback("usage report", quiet=options["quiet"]) as progress:
            report = usage_report(
                since=since,
                until=until,
                by=options["by"],
                instances=[instance] if instance else None,
                phase=progress.phase,
            )
        if options["csv"]:
            self.stdout.write(report.csv(), ending="")
        else:
            self.stdout.write("\n".join(table(report)))
        if not options["quiet"]:
            line = f"{report.summary()}; {progress.seconds:.2f} s"
            (self.stderr if options["csv"] else self.stdout).write(line)
