"""The leader's journal: what each step did to its policy, for standbys to do alike.

The policy is a pure state machine (`scheduler.policy.core`): the same calls in
the same order leave the same state. So the leader records, in the transaction
of each step, the calls it made on its policy (`Record`): every
`run_instant(t, actions)`, the closed sessions and the backends it recalled from
their rows. A standby (`scheduler.engine.standby`) that loaded once applies the
rows in order and its memory stays the leader's, at the cost of the steps, not
of the queue.

Each row also carries a `digest` of the state after the step (per backend: how
many wait, what runs, which session is active; the policy's instant): a
standby compares its own after applying the row, and any difference, a missing
row (`seq` not the next) or a row that began with a full load sends it back to
a full load. The database stays the truth.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError
from django.db.models import Max
from django.utils import timezone

from scheduler import models
from scheduler.engine.rows import Written
from scheduler.engine.save import Conflict
from scheduler.policy import Policy
from scheduler.policy import model as m

KEEP = timedelta(minutes=5)  # rows older than this are deleted (a standby this far behind loads)
RUN, RESTORE, BACKEND = "run", "restore", "backend"


@dataclass
class Record:
    """The calls one step makes on the policy, pickled as they are made (later
    calls change the objects they name)."""

    ops: list[bytes] = field(default_factory=list)
    loaded: bool = False  # the step began from a full load
    given: bool = False  # some call gave the policy something (actions, rows)

    def run(self, t: int, actions: Sequence[m.Action]) -> None:
        self.given = self.given or bool(actions)
        self.ops.append(pickle.dumps((RUN, t, list(actions)), pickle.HIGHEST_PROTOCOL))

    def restore(self, sessions: Sequence[m.Session]) -> None:
        if sessions:
            self.given = True
            self.ops.append(pickle.dumps((RESTORE, list(sessions)), pickle.HIGHEST_PROTOCOL))

    def backend(self, backend: m.Backend) -> None:
        self.given = True
        self.ops.append(pickle.dumps((BACKEND, backend), pickle.HIGHEST_PROTOCOL))

    def worth_writing(self, instant: m.Instant, inputs: int) -> bool:
        """Whether a standby needs the row: the step changed something (a step that
        only moved the clock, with nothing due, is left out)."""
        return bool(self.loaded or self.given or inputs or instant.events or instant.charges)


def apply(policy: Policy, ops: Sequence[bytes]) -> tuple[m.Instant, list[m.Session]]:
    """Make the recorded calls on `policy`; what they changed, merged, and the
    sessions recalled from their rows."""
    merged = m.Instant()
    restored: list[m.Session] = []
    for op in ops:
        kind, *args = pickle.loads(op)  # noqa: S301 - the leader's own rows, trusted as the database
        if kind == RUN:
            merged.extend(policy.run_instant(args[0], args[1]))
        elif kind == RESTORE:
            policy.restore(args[0], [])
            restored += args[0]
        elif kind == BACKEND:
            policy.add_backend(args[0])
    return merged, restored


def digest(policy: Policy) -> dict[str, Any]:
    """The state after a step, cheaply (it costs the backends, not the queue)."""
    backends = {}
    for name in sorted(policy.backends):
        backend = policy.backends[name]
        backends[name] = [
            policy.queues(name).queued,
            backend.running.id if backend.running else None,
            backend.active_session.id if backend.active_session else None,
            backend.status,
        ]
    return {"now": policy.now, "backends": backends}


def keys(written: Written, instant: m.Instant) -> dict[str, dict[str, int]]:
    """The keys of the job and session rows the step's events name (a standby learns
    the rows the leader created or applied)."""
    jobs: dict[str, int] = {}
    sessions: dict[str, int] = {}
    for event in instant.events:
        subject = event.subject
        if isinstance(subject, m.Job):
            if subject.id in written.jobs:
                jobs[subject.id] = written.jobs[subject.id][0]
            subject = subject.session
        if isinstance(subject, m.Session) and subject.id in written.sessions:
            sessions[subject.id] = written.sessions[subject.id][0]
    return {"jobs": jobs, "sessions": sessions}


def write(
    seq: int,
    record: Record,
    policy: Policy,
    written: Written,
    instant: m.Instant,
    inputs: int,
) -> None:
    """The step's row (in the step's transaction). A row of that number already there
    was written by another process that led meanwhile: the step conflicts."""
    try:
        models.StepRecord.objects.create(
            seq=seq,
            at=timezone.now(),
            loaded=record.loaded,
            inputs=inputs,
            ops=b"".join(_framed(record.ops)),
            keys=keys(written, instant),
            digest=digest(policy),
        )
    except IntegrityError as error:  # the step's transaction rolls back on the way out
        raise Conflict(f"journal step {seq} was written by another leader") from error


def ops_of(row: models.StepRecord) -> list[bytes]:
    """The pickled calls of a row, in order."""
    data = bytes(row.ops)
    out, i = [], 0
    while i < len(data):
        size = int.from_bytes(data[i : i + 4], "big")
        out.append(data[i + 4 : i + 4 + size])
        i += 4 + size
    return out


def _framed(ops: list[bytes]) -> list[bytes]:
    return [len(op).to_bytes(4, "big") + op for op in ops]


def last_seq() -> int:
    """The newest row's number (0: none)."""
    return models.StepRecord.objects.aggregate(last=Max("seq"))["last"] or 0


def prune() -> int:
    """Delete the rows older than KEEP, but never the newest (the leader calls it)."""
    newest = last_seq()
    old = models.StepRecord.objects.filter(at__lt=timezone.now() - KEEP, seq__lt=newest)
    deleted, _ = old.delete()
    return deleted
