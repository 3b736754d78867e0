"""Feedback from commands that take a while: a progress bar on a terminal, a summary after.

The bar (rich's) goes to stderr, only when stderr is a terminal, only without
`--quiet`, and only once the work has taken `DELAY` seconds, so quick runs, pipes
and CI logs stay clean. Work reports itself through a plain callback, `advance(done)`
or `phase(name)`, that costs a comparison when no bar is shown.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

DELAY = 1.0  # seconds of work before a bar appears
EVERY = 512  # `advance` looks at the clock once per this many units of work
REFRESH = 0.5  # seconds between two drawings of the bar


class Feedback:
    """One command's progress: `total` units of work (None: phases without a count)."""

    def __init__(
        self, what: str, total: int | None, *, enabled: bool, stream: IO[str] | None = None
    ) -> None:
        self.what = what
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None
        self._next_look = EVERY
        self._done = 0
        self._drawn = 0.0

    def advance(self, done: int) -> None:
        """`done` units of the total are finished (called as often as one likes)."""
        if not self.enabled or done < self._next_look:
            return
        self._next_look = done + EVERY
        self._done = done
        rate = done / max(time.perf_counter() - self.started, 1e-9)
        self._show(completed=done, rate=f"{rate:,.0f}/s")

    def phase(self, name: str) -> None:
        """The work moved on to `name` (for work measured in phases)."""
        if self.enabled:
            self._show(description=f"{self.what}: {name}")

    def _show(self, **update: Any) -> None:
        if self._bar is None:
            if time.perf_counter() - self.started < DELAY:
                return
            self._start()
        self._bar.update(self._task, **update)
        # Counted work is drawn here, in the working thread, at most every REFRESH: a
        # refresh thread would take the interpreter from the work four times a second.
        # (Phases, which may each last long, keep rich's thread so the clock runs.)
        now = time.perf_counter()
        if self.total is not None and now - self._drawn >= REFRESH:
            self._drawn = now
            self._bar.refresh()

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        console = Console(file=self.stream, force_terminal=True)
        columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
        if self.total is not None:
            columns += [BarColumn(), MofNCompleteColumn(), TaskProgressColumn()]
            columns += [TextColumn("{task.fields[rate]}"), TimeRemainingColumn()]
        else:
            columns.append(TimeElapsedColumn())
        self._bar = Progress(
            *columns, console=console, transient=True, auto_refresh=self.total is None
        )
        self._bar.start()
        self._task = self._bar.add_task(self.what, total=self.total, completed=self._done, rate="")

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


@contextmanager
def feedback(
    what: str, total: int | None = None, *, quiet: bool = False, stream: IO[str] | None = None
) -> Iterator[Feedback]:
    """Progress for `what`; shown only on a terminal and never with `quiet`."""
    stream = stream or sys.stderr
    shown = not quiet and stream.isatty()
    progress = Feedback(what, total, enabled=shown, stream=stream)
    try:
        yield progress
    finally:
        progress.close()


def duration(seconds: float) -> str:
    """A span as `HH:MM:SS`, with days in front from one day on: `4 d 03:12:00`."""
    whole = round(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days} d {clock}" if days else clock
