"""`manage.py whatif --reservation ... --share ... --allocation ... --pause ... --hours H [--json]`.

Prints the what-if page's comparison (docs/what-if.md) as tables, or as JSON for
scripts. Bad arguments give one line on stderr and exit status 2, changing nothing:
the command only reads.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandParser

from scheduler.clock import SystemClock
from scheduler.progress import feedback
from scheduler.whatif import words
from scheduler.whatif.changes import ChangeError, parse_all
from scheduler.whatif.report import MAX_HOURS, Report, report_json, whatif_run

OPTIONS = {  # option -> (kind, metavar, help)
    "--reservation": ("reservation", "BACKEND,INSTANCE,START,END[,exclusive]", "add a window"),
    "--move": ("move", "ID,START,END[,exclusive|shared]", "move a reservation's window"),
    "--delete": ("delete", "ID", "delete a reservation"),
    "--share": ("share", "PATH=VALUE", "change an instance's share"),
    "--allocation": (
        "allocation",
        "NODE=SECONDS[,MODE[,START,LENGTH]]|NODE=none",
        "set or remove a node's allocation",
    ),
    "--pause": ("pause", "BACKEND", "pause a backend"),
    "--resume": ("resume", "BACKEND", "resume a backend"),
    "--overhead": ("overhead", "BACKEND=SECONDS", "change a backend's per-job overhead"),
    "--load": ("load", "BACKEND,INSTANCE,JOBS_PER_HOUR", "assume synthetic arrivals"),
}


class Stack(argparse.Action):
    """Keeps every change option in the order given, as `KIND:ARGS`."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        setattr(
            namespace, self.dest, [*getattr(namespace, self.dest, []), f"{self.const}:{values}"]
        )


class Command(BaseCommand):
    help = (
        "Compare the futures of the live state without and with proposed changes. "
        "Times: ISO 8601, HH:MM (today) or +90m; in the server's time zone."
    )

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.error = self._usage_error  # type: ignore[method-assign]
        return parser

    def _usage_error(self, message: str) -> NoReturn:
        self.stderr.write(f"whatif: {message}")
        sys.exit(2)

    def add_arguments(self, parser: CommandParser) -> None:
        for option, (kind, metavar, text) in OPTIONS.items():
            parser.add_argument(
                option, action=Stack, const=kind, dest="changes", metavar=metavar, help=text
            )
        parser.set_defaults(changes=[])
        parser.add_argument("--hours", default="4", help=f"horizon, up to {MAX_HOURS:g} (4)")
        parser.add_argument("--seed", default="0", help="seed of the synthetic load (0)")
        parser.add_argument("--json", action="store_true", help="print JSON for scripts")
        parser.add_argument("--quiet", action="store_true", help="no progress and no summary line")

    def handle(self, *args: Any, **options: Any) -> None:
        now = SystemClock().now()
        try:
            hours = float(options["hours"])
            seed = int(options["seed"])
        except ValueError:
            self._usage_error("--hours takes a number of hours, --seed a whole number")
        if not 0 < hours <= MAX_HOURS:
            self._usage_error(f"--hours must be more than 0 and at most {MAX_HOURS:g}")
        if seed < 0:
            self._usage_error("--seed must not be negative")
        try:
            proposed = parse_all(options["changes"], now=now)
        except ChangeError as error:
            self._usage_error(str(error))
        with feedback("what if", quiet=options["quiet"]) as progress:
            report = whatif_run(
                changes=proposed, hours=hours, seed=seed, now=now, phase=progress.phase
            )
        if options["json"]:
            self.stdout.write(json.dumps(report_json(report), indent=2))
            return
        self.stdout.write("\n".join(tables(report)))
        if not options["quiet"]:
            self.stdout.write(
                f"{report.known_queued + report.known_running:,} known jobs and "
                f"{report.synthetic:,} arrivals over {report.hours:g} h, both futures "
                f"in {report.seconds:.1f} s"
            )


def _pair(row: dict[str, Any], key: str, show: Any = str) -> str:
    return f"{show(row['without'][key])} → {show(row['with'][key])}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    head = "  ".join(cell.ljust(w) for cell, w in zip(header, widths, strict=True))
    return [head.rstrip(), "  ".join("-" * w for w in widths), *(line.rstrip() for line in lines)]


def tables(report: Report) -> list[str]:
    """The page's comparison as text: without → with in every cell."""
    a = report.attribution
    out = [
        f"What if, from {report.now:%Y-%m-%d %H:%M:%S %Z} for {report.hours:g} h "
        f"(seed {report.seed}); an estimate on the scheduling rules.",
        "Changes:" if report.changes else "Changes: none (both futures are the same).",
        *(
            f"  {n}. {p.summary}{'' if p.applicable else ' (assumed in both futures)'}"
            for n, p in enumerate(report.changes, 1)
        ),
        f"Known now: {report.known_queued} queued, {report.known_running} running "
        f"(modeled times). Synthetic jobs: {report.synthetic}, the same in both futures; "
        "nothing else is assumed to arrive.",
        f"Difference in time queued: {words.signed_span(a['known']['delta_queued_seconds'])} "
        f"from known jobs, {words.signed_span(a['synthetic']['delta_queued_seconds'])} "
        "from the synthetic load.",
        "",
        "Per instance (without → with)",
    ]
    rows = []
    for node in report.nodes:
        for origin in ("known", "synthetic"):
            side = node[origin]
            if not (side["without"]["waiting"] or side["with"]["waiting"]):
                continue
            rows.append(
                [
                    "  " * node["depth"] + node["node"],
                    origin,
                    _pair(side, "started"),
                    f"{words.wait(side['without'], 'p50')} → {words.wait(side['with'], 'p50')}",
                    f"{words.wait(side['without'], 'p95')} → {words.wait(side['with'], 'p95')}",
                    _pair(side, "still_queued"),
                    _pair(side, "ended_unstarted"),
                    words.signed_span(side["delta_queued_seconds"]),
                ]
            )
    head = ["instance", "jobs", "started", "wait p50", "wait p95", "still queued"]
    out += _table([*head, "ended unstarted", "Δ time queued"], rows)
    out += ["", "Per backend (without → with)"]
    out += _table(
        ["backend", "utilisation", "started", "idle", "in exclusive windows", "held", "paused"],
        [
            [
                row["backend"],
                _pair(row, "utilisation", words.percent),
                _pair(row, "started"),
                _pair(row, "idle_seconds", words.span),
                _pair(row, "exclusive_idle_seconds", words.span),
                _pair(row, "held_seconds", words.span),
                _pair(row, "paused_seconds", words.span),
            ]
            for row in report.backends
        ],
    )
    out += ["", "Sessions bound, closed at a window's end or at their max TTL"]
    sessions = [
        [s["session"], s["owner"] or "-", s["instance"], s["backend"]]
        + [words.fate(s["without"]), words.fate(s["with"])]
        for s in report.sessions
    ]
    head = ["session", "owner", "instance", "backend", "without", "with"]
    out += _table(head, sessions) if sessions else ["  none in either future"]
    return out
