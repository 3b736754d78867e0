"""The console's one summary line a minute of what the scheduler did.

Each step's own line is at debug level (`scheduler.steps`); this keeps the console
to the URL, the logins, warnings and this line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

log = logging.getLogger("scheduler.summary")
EVERY_SECONDS = 60.0


class MinuteSummary:
    """Counts of the steps since the last line; a line when a minute has passed."""

    def __init__(
        self, every: float = EVERY_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.every = every
        self.clock = clock
        self.since = clock()
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def add(self, **counts: int) -> str | None:
        """Count a step; returns the summary line when one is due (and logs it)."""
        with self._lock:
            self.counts.update({"steps": 1, **counts})
            now = self.clock()
            if now - self.since < self.every:
                return None
            minutes = (now - self.since) / 60
            counts_now, self.counts, self.since = self.counts, Counter(), now
        line = (
            f"last {minutes:.1f} min: {counts_now['steps']} steps, {counts_now['inputs']} inputs, "
            f"{counts_now['started']} jobs started, {counts_now['ended']} ended, "
            f"{counts_now['timers']} timers, {counts_now['refused']} refused"
        )
        log.info("%s", line)
        return line


summary = MinuteSummary()
