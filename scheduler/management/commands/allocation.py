"""`manage.py allocation set|remove|list`: operators' allocations, in the habit of
Slurm's `sacctmgr` (docs/rules.md, "Allocations").

    allocation set NODE --seconds S [--enforce queue|safe|refuse]
                        [--period-start ISO --period-length SECONDS]
    allocation remove NODE
    allocation list [--json]

A change goes through the same service as the admin's (the row, the leader's input
and the audit entry, naming the user who ran the command). Bad input is one line
on stderr and exit status 2, and changes nothing.
"""

from __future__ import annotations

import getpass
import json
import sys
from datetime import datetime, timedelta
from typing import Any, NoReturn

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from scheduler import services
from scheduler.management.oneline import one_line_errors
from scheduler.policy import model as m
from scheduler.selectors.allocations import AllocationStatus, allocations_status


class Command(BaseCommand):
    help = "Set, remove or list the allocations of instance-tree nodes."

    def add_arguments(self, parser: CommandParser) -> None:
        one_line_errors(parser)
        actions = parser.add_subparsers(dest="action", required=True, metavar="set|remove|list")
        put = actions.add_parser("set", help="give a node an allocation, replacing any")
        put.add_argument("node", help="hub, hub/group or hub/group/project")
        put.add_argument("--seconds", required=True, type=float, help="usage per period")
        put.add_argument("--enforce", choices=m.ENFORCE_MODES, default=m.QUEUE)
        put.add_argument("--period-start", help="fixed periods begin here (ISO 8601)")
        put.add_argument("--period-length", type=float, help="seconds in one fixed period")
        remove = actions.add_parser("remove", help="remove a node's allocation")
        remove.add_argument("node")
        listing = actions.add_parser("list", help="every allocation, what it used and has left")
        listing.add_argument("--json", action="store_true", help="as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            self._list(options["json"])
        elif action == "remove":
            if not services.allocations_remove(path=options["node"], via=_via()):
                self._fail(f"{options['node']} has no allocation")
            self.stdout.write(f"removed the allocation of {options['node']}")
        else:
            self._set(options)

    def _set(self, options: dict[str, Any]) -> None:
        start = None
        if options["period_start"]:
            try:
                start = _moment(options["period_start"])
            except ValueError:
                self._fail(f"--period-start: {options['period_start']!r} is not an ISO 8601 time")
        length = options["period_length"]
        try:
            row = services.allocations_set(
                path=options["node"],
                seconds=options["seconds"],
                enforce=options["enforce"],
                period_start=start,
                period_length=None if length is None else timedelta(seconds=length),
                via=_via(),
            )
        except ValidationError as error:
            self._fail(" ".join(text for texts in error.message_dict.values() for text in texts))
        except (OverflowError, ValueError):  # a timedelta too long, or NaN
            self._fail(f"--period-length: {length!r} is not a length in seconds")
        self.stdout.write(f"set {row.instance.path}: {row.seconds:g} s, {row.enforce}")

    def _list(self, as_json: bool) -> None:
        statuses = allocations_status()
        if as_json:
            self.stdout.write(json.dumps([_json(s) for s in statuses], indent=1))
            return
        if not statuses:
            self.stdout.write("no allocations")
            return
        rows: list[tuple[str, ...]] = [
            ("node", "seconds", "enforce", "period", "consumed", "left", "frees")
        ]
        rows += [_row(s) for s in statuses]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = (cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            self.stdout.write("  ".join(cells).rstrip())

    def _fail(self, message: str) -> NoReturn:
        self.stderr.write(f"allocation: {message}")
        sys.exit(2)


def _via() -> str:
    return f"manage.py allocation, run by {getpass.getuser()}"


def _moment(text: str) -> datetime:
    """An ISO 8601 time; without a zone, the server's."""
    moment = datetime.fromisoformat(text)
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def _period(s: AllocationStatus) -> str:
    span = f"{s.period_start:%Y-%m-%d %H:%M:%S} to {s.period_end:%Y-%m-%d %H:%M:%S} UTC"
    if s.rolling:
        return f"rolling, {span}"
    return span if s.started else f"first period {span}"


def _row(s: AllocationStatus) -> tuple[str, ...]:
    frees = "" if s.frees is None else f"{s.frees:%Y-%m-%d %H:%M:%S} UTC"
    if s.exhausted and s.frees is None:
        frees = "never in this period"
    return (
        s.node,
        f"{s.seconds:g}",
        s.enforce,
        _period(s),
        f"{s.consumed:g}",
        f"{s.left:g}",
        frees,
    )


def _json(s: AllocationStatus) -> dict[str, Any]:
    return {
        "node": s.node,
        "seconds": s.seconds,
        "enforce": s.enforce,
        "period": "rolling" if s.rolling else "fixed",
        "period_start": s.period_start.isoformat(),
        "period_end": s.period_end.isoformat(),
        "consumed_seconds": s.consumed,
        "left_seconds": s.left,
        "exhausted": s.exhausted,
        "frees": None if s.frees is None else s.frees.isoformat(),
    }
