"""Two traces compared event by event: where the replay and the live run first part.

`trace_events` turns a trace into one list of events in time order (a job's
submission or refusal, start, end; a session's state changes); within an
instant, ends, submissions, session changes, then starts, each by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scheduler.policy import model as m

KIND_ORDER = {"ended": 0, "submitted": 1, "rejected": 1, "session": 2, "started": 3}


def trace_events(trace: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """A trace as a list of events in time order: every job's submission (or refusal),
    start and end, every session state change; within an instant, by kind and name."""
    events: list[tuple[Any, ...]] = []
    for uid, job in trace["jobs"].items():
        if job["status"] == "Rejected":
            events.append((job["submitted_at"], "rejected", uid, job["error"]))
            continue
        events.append((job["submitted_at"], "submitted", uid, job["backend"], job["session"]))
        if job["started_at"] is not None:
            events.append((job["started_at"], "started", uid, job["backend"], job["lane"]))
        if job["ended_at"] is not None:
            events.append((job["ended_at"], "ended", uid, job["status"], job["error"]))
    for sid, session in trace["sessions"].items():
        history = session["history"]
        for n, (at, state) in enumerate(history):
            last = n == len(history) - 1 and state == m.CLOSED
            reason = session["closed_reason"] if last else None
            events.append((at, "session", sid, state, reason))
    events.sort(key=lambda e: (e[0], KIND_ORDER[e[1]], e[2], repr(e[3:])))
    return events


def describe(event: tuple[Any, ...] | None) -> str:
    """One event of `trace_events` in words."""
    if event is None:
        return "no further event"
    at, kind, name, *rest = event
    if kind == "rejected":
        return f"job {name} refused ({rest[0]}) at {at}"
    if kind == "submitted":
        backend, session = rest
        where = f" in session {session}" if session else ""
        return f"job {name} submitted to {backend}{where} at {at}"
    if kind == "started":
        return f"job {name} started on {rest[0]} from the {rest[1]} lane at {at}"
    if kind == "ended":
        status, error = rest
        return f"job {name} {status}{f' ({error})' if error else ''} at {at}"
    state, reason = rest
    return f"session {name} {state}{f' ({reason})' if reason else ''} at {at}"


@dataclass(frozen=True)
class Difference:
    """Where two traces first part: the event index, each side's event, and context."""

    index: int | None  # None: the event lists agree and a summary field differs
    expected: str
    live: str
    subject: str
    context: list[str]  # the events both agree on just before

    def __str__(self) -> str:
        where = f"event {self.index}" if self.index is not None else self.subject
        lines = [f"first difference at {where}:", f"  expected: {self.expected}"]
        lines.append(f"  live:     {self.live}")
        lines += [f"  after:    {line}" for line in self.context]
        return "\n".join(lines)


def first_difference(
    expected: Mapping[str, Any], live: Mapping[str, Any], *, context: int = 3
) -> Difference | None:
    """The first event at which trace `live` departs from trace `expected`, or None
    when they are equal."""
    a, b = trace_events(expected), trace_events(live)
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return _difference(i, x, y, a, context)
    if len(a) != len(b):
        i = min(len(a), len(b))
        return _difference(
            i, a[i] if i < len(a) else None, b[i] if i < len(b) else None, a, context
        )
    for key in ("jobs", "sessions", "starts", "usage", "end_time"):
        if expected.get(key) != live.get(key):
            return _summary_difference(key, expected.get(key), live.get(key))
    return None


def _difference(
    i: int,
    x: tuple[Any, ...] | None,
    y: tuple[Any, ...] | None,
    events: Sequence[tuple[Any, ...]],
    context: int,
) -> Difference:
    subject = " / ".join(
        dict.fromkeys(
            f"{'session' if e[1] == 'session' else 'job'} {e[2]}" for e in (x, y) if e is not None
        )
    )
    return Difference(
        index=i,
        expected=describe(x),
        live=describe(y),
        subject=subject,
        context=[describe(e) for e in events[max(0, i - context) : i]],
    )


def _summary_difference(key: str, x: Any, y: Any) -> Difference:
    if isinstance(x, dict) and isinstance(y, dict):
        for name in [*x, *(k for k in y if k not in x)]:
            if x.get(name) != y.get(name):
                return Difference(
                    None, repr(x.get(name)), repr(y.get(name)), f"{key} of {name}", []
                )
    return Difference(None, repr(x), repr(y), key, [])


def summary(trace: Mapping[str, Any]) -> str:
    return f"{len(trace['jobs'])} jobs, {len(trace['sessions'])} sessions"
