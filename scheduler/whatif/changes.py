"""Proposed changes of the what-if page and `manage.py whatif`, as one text syntax.

A change is `KIND:ARGS`, the same in the page's URL and on the command line:

| kind          | ARGS                                   |
|---------------|----------------------------------------|
| `reservation` | `BACKEND,INSTANCE,START,END[,exclusive]` |
| `move`        | `ID,START,END[,exclusive\\|shared]`      |
| `delete`      | `ID`                                   |
| `share`       | `PATH=VALUE`                           |
| `allocation`  | `NODE=SECONDS[,MODE[,START,LENGTH]]` or `NODE=none` |
| `pause`       | `BACKEND`                              |
| `resume`      | `BACKEND`                              |
| `overhead`    | `BACKEND=SECONDS`                      |
| `load`        | `BACKEND,INSTANCE,JOBS_PER_HOUR`       |

Times are ISO 8601 (no zone: the server's), `HH:MM` (today, the server's zone)
or `+90m` / `+2h` from now. Parsing checks everything against the database
and the changes before it (a window may not overlap another), so a change that
parses is one the operator could make; a bad one raises `ChangeError` with one
line that says why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from scheduler import models
from scheduler.clock import seconds_ticks, span_ticks, to_ticks
from scheduler.policy import futures
from scheduler.policy import model as m

KINDS = (
    "reservation",
    "move",
    "delete",
    "share",
    "allocation",
    "pause",
    "resume",
    "overhead",
    "load",
)
MAX_PER_HOUR = 5_000.0  # synthetic jobs an hour, per load
MAX_OVERHEAD = 3600.0  # seconds
SHOTS = 4_000  # shots a synthetic job runs, besides the backend's per-job overhead
RELATIVE = re.compile(r"^\+(\d+(?:\.\d+)?)([smh])$")
CLOCK_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


class ChangeError(ValueError):
    """A change that cannot be made; the message is one line."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposed:
    """One parsed change: its text, its words, and what the rules get."""

    kind: str
    text: str  # ARGS as given (the URL and the command line carry `kind:text`)
    summary: str
    change: futures.Change | None  # None for a synthetic load
    load: futures.Load | None = None
    reservation: models.Reservation | None = None  # added (unsaved), moved or deleted
    backend: models.Backend | None = None
    instance: models.Instance | None = None
    value: float | None = None  # a share, or an overhead in seconds

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.text}"

    @property
    def applicable(self) -> bool:
        """A synthetic load is an assumption about arrivals, not something to apply."""
        return self.kind != "load"


def parse_all(specs: Iterable[str], *, now: datetime) -> list[Proposed]:
    """Parse `KIND:ARGS` specs in order; each is checked against those before it."""
    done: list[Proposed] = []
    for spec in specs:
        kind, sep, text = spec.partition(":")
        if not sep:
            raise ChangeError(f"{spec!r}: expected KIND:ARGS, KIND one of {', '.join(KINDS)}")
        done.append(parse(kind, text, now=now, before=done))
    return done


def parse(kind: str, text: str, *, now: datetime, before: Sequence[Proposed] = ()) -> Proposed:
    """One change of `kind` from its ARGS text."""
    text = text.strip()
    try:
        if kind == "reservation":
            return _reservation(text, now, before)
        if kind == "move":
            return _move(text, now, before)
        if kind == "delete":
            return _delete(text, before)
        if kind == "share":
            return _share(text)
        if kind == "allocation":
            return _allocation(text, now)
        if kind in ("pause", "resume"):
            return _status(kind, text)
        if kind == "overhead":
            return _overhead(text)
        if kind == "load":
            return _load(text)
    except ChangeError as error:
        raise ChangeError(f"{kind} {text!r}: {error}") from None
    raise ChangeError(f"unknown change {kind!r} (one of {', '.join(KINDS)})")


def parse_moment(text: str, *, now: datetime) -> datetime:
    """A time: ISO 8601, `HH:MM` today, or `+N[smh]` from now (in the server's zone)."""
    text = text.strip()
    if match := RELATIVE.match(text):
        unit = {"s": 1, "m": 60, "h": 3600}[match[2]]
        return now + timedelta(seconds=float(match[1]) * unit)
    local = timezone.localtime(now)
    if match := CLOCK_TIME.match(text):
        hour, minute = int(match[1]), int(match[2])
        if hour > 23 or minute > 59:
            raise ChangeError(f"{text!r} is not a time of day")
        return local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ChangeError(f"{text!r} is not a time (ISO 8601, HH:MM or +90m)") from None
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def _parts(text: str, least: int, most: int, shape: str) -> list[str]:
    parts = [part.strip() for part in text.split(",")]
    if not least <= len(parts) <= most or not all(parts):
        raise ChangeError(f"expected {shape}")
    return parts


def _backend(name: str) -> models.Backend:
    backend = models.Backend.objects.filter(name=name).first()
    if backend is None:
        raise ChangeError(f"unknown backend {name!r}")
    return backend


def _instance(path: str, *, project: bool) -> models.Instance:
    node = models.Instance.objects.filter(path=path).first()
    if node is None:
        raise ChangeError(f"unknown instance {path!r}")
    if project and not node.is_project:
        raise ChangeError(f"{path!r} is not a hub/group/project instance")
    return node


def _number(text: str, what: str, *, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ChangeError(f"{what} {text!r} is not a number") from None
    if not low <= value <= high:
        raise ChangeError(f"{what} must be between {low:g} and {high:g}")
    return value


def _flag(text: str | None, *, allow_shared: bool) -> bool | None:
    if text is None:
        return None
    if text == "exclusive" or (allow_shared and text == "shared"):
        return text == "exclusive"
    raise ChangeError(f"{text!r}: expected 'exclusive'{' or shared' if allow_shared else ''}")


def _reservation(text: str, now: datetime, before: Sequence[Proposed]) -> Proposed:
    parts = _parts(text, 4, 5, "BACKEND,INSTANCE,START,END[,exclusive]")
    backend = _backend(parts[0])
    node = _instance(parts[1], project=True)
    start, end = parse_moment(parts[2], now=now), parse_moment(parts[3], now=now)
    exclusive = bool(_flag(parts[4] if len(parts) == 5 else None, allow_shared=False))
    row = models.Reservation(backend=backend, instance=node, start=start, end=end)
    row.exclusive = exclusive
    if end <= now:
        raise ChangeError("the window ends in the past: it would change nothing")
    _check_window(row, before)
    new_id = f"new-{sum(p.kind == 'reservation' for p in before) + 1}"
    change = m.PutReservation(
        backend.name, node.path, new_id, to_ticks(start), to_ticks(end), exclusive
    )
    words = "an exclusive window" if exclusive else "a window"
    summary = f"Add {words} for {node.path} on {backend.name}, {_span(start, end)}"
    return Proposed(kind="reservation", text=text, summary=summary, change=change, reservation=row)


def _existing(text: str, before: Sequence[Proposed]) -> models.Reservation:
    if not text.isdigit():
        raise ChangeError(f"reservation id {text!r} is not a number")
    row = models.Reservation.objects.filter(pk=int(text)).select_related("backend", "instance")
    found = row.first()
    if found is None or any(p.kind == "delete" and p.text == text for p in before):
        raise ChangeError(f"no reservation {text}")
    if found.ended:
        raise ChangeError(f"reservation {text} has ended; its past stays as it was")
    return found


def _move(text: str, now: datetime, before: Sequence[Proposed]) -> Proposed:
    parts = _parts(text, 3, 4, "ID,START,END[,exclusive|shared]")
    row = _existing(parts[0], before)
    start, end = parse_moment(parts[1], now=now), parse_moment(parts[2], now=now)
    if row.started and start != row.start:
        raise ChangeError(f"reservation {row.pk} has opened: only its end can move")
    flag = _flag(parts[3] if len(parts) == 4 else None, allow_shared=True)
    row.start, row.end = start, end
    if flag is not None:
        row.exclusive = flag
    _check_window(row, before)
    change = m.PutReservation(
        row.backend.name,
        row.instance.path,
        str(row.pk),
        to_ticks(start),
        to_ticks(end),
        row.exclusive,
    )
    words = "exclusive" if row.exclusive else "not exclusive"
    summary = (
        f"Move reservation {row.pk} ({row.instance.path} on {row.backend.name}) "
        f"to {_span(start, end)}, {words}"
    )
    return Proposed(kind="move", text=text, summary=summary, change=change, reservation=row)


def _delete(text: str, before: Sequence[Proposed]) -> Proposed:
    row = _existing(text, before)
    summary = (
        f"Delete reservation {row.pk} ({row.instance.path} on {row.backend.name}, "
        f"{_span(row.start, row.end)})"
    )
    change = m.RemoveReservation(str(row.pk))
    return Proposed(kind="delete", text=text, summary=summary, change=change, reservation=row)


def _share(text: str) -> Proposed:
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise ChangeError("expected PATH=VALUE")
    node = _instance(path.strip(), project=False)
    share = _number(value.strip(), "the share", low=0.0, high=1e9)
    summary = f"Set the share of {node.path} from {node.share:g} to {share:g}"
    change = m.SetShare(node.path, share)
    return Proposed(
        kind="share", text=text, summary=summary, change=change, instance=node, value=share
    )


def _allocation(text: str, now: datetime) -> Proposed:
    """`NODE=SECONDS[,MODE[,START,LENGTH]]` (the rolling window without START and LENGTH),
    or `NODE=none` to remove the node's allocation."""
    path, sep, rest = text.partition("=")
    if not sep or not path.strip():
        raise ChangeError("expected NODE=SECONDS[,MODE[,START,LENGTH]] or NODE=none")
    node = _instance(path.strip(), project=False)
    current = models.Allocation.objects.filter(instance=node).first()
    was = "none" if current is None else f"{current.seconds:g} s ({current.enforce})"
    if rest.strip() == "none":
        if current is None:
            raise ChangeError(f"{node.path} has no allocation to remove")
        change = m.PutAllocation(node=node.path, amount=None)
        summary = f"Remove the allocation of {node.path} ({was})"
        return Proposed(kind="allocation", text=text, summary=summary, change=change, instance=node)
    parts = _parts(rest, 1, 4, "SECONDS[,MODE[,START,LENGTH]]")
    seconds = _number(parts[0], "the allocation", low=0.0, high=1e12)
    enforce = parts[1] if len(parts) > 1 else m.QUEUE
    if enforce not in m.ENFORCE_MODES:
        raise ChangeError(f"mode {enforce!r}: use {', '.join(m.ENFORCE_MODES)}")
    period = None
    if len(parts) == 3:
        raise ChangeError("a fixed period needs its START and its LENGTH in seconds")
    if len(parts) == 4:
        start = parse_moment(parts[2], now=now)
        length = _number(parts[3], "the period's length", low=1e-6, high=1e10)
        period = m.Period(to_ticks(start), seconds_ticks(length))
    change = m.PutAllocation(
        node=node.path, amount=seconds_ticks(seconds), enforce=enforce, period=period
    )
    every = "in the rolling window" if period is None else f"every {parts[3]} s from {parts[2]}"
    summary = f"Give {node.path} an allocation of {seconds:g} s {every}, {enforce} (was {was})"
    return Proposed(
        kind="allocation", text=text, summary=summary, change=change, instance=node, value=seconds
    )


def _status(kind: str, text: str) -> Proposed:
    backend = _backend(text)
    status = m.PAUSED if kind == "pause" else m.ONLINE
    summary = f"{'Pause' if kind == 'pause' else 'Resume'} {backend.name}"
    if backend.status == status:
        summary += f" (it is {status} already)"
    change = m.SetBackendStatus(backend.name, status)
    return Proposed(kind=kind, text=text, summary=summary, change=change, backend=backend)


def _overhead(text: str) -> Proposed:
    name, sep, value = text.partition("=")
    if not sep:
        raise ChangeError("expected BACKEND=SECONDS")
    backend = _backend(name.strip())
    seconds = _number(value.strip(), "the overhead", low=0.0, high=MAX_OVERHEAD)
    overhead = timedelta(seconds=seconds)
    summary = (
        f"Set the per-job overhead of {backend.name} from "
        f"{backend.job_overhead.total_seconds():g} s to {seconds:g} s"
    )
    change = futures.SetOverhead(backend.name, span_ticks(overhead) or 0)
    return Proposed(
        kind="overhead", text=text, summary=summary, change=change, backend=backend, value=seconds
    )


def _load(text: str) -> Proposed:
    parts = _parts(text, 3, 3, "BACKEND,INSTANCE,JOBS_PER_HOUR")
    backend = _backend(parts[0])
    node = _instance(parts[1], project=True)
    per_hour = _number(parts[2], "jobs per hour", low=0.0, high=MAX_PER_HOUR)
    work = span_ticks(SHOTS * backend.shot_time) or 0
    load = futures.Load(backend=backend.name, instance=node.path, per_hour=per_hour, work=work)
    summary = f"Assume {per_hour:g} jobs an hour of {node.path} on {backend.name}"
    return Proposed(
        kind="load", text=text, summary=summary, change=None, load=load, backend=backend
    )


def _span(start: datetime, end: datetime) -> str:
    start, end = timezone.localtime(start), timezone.localtime(end)
    same_day = start.date() == end.date()
    return (
        f"{start:%Y-%m-%d %H:%M} to {end:%H:%M}"
        if same_day
        else f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M}"
    )


def _check_window(row: models.Reservation, before: Sequence[Proposed]) -> None:
    """`end > start`, and no overlap with the windows as the changes
    before this one leave them (the admin's rule, on the proposed state)."""
    if row.end <= row.start:
        raise ChangeError("the window must end after it starts")
    gone = {p.reservation.pk for p in before if p.kind in ("move", "delete") and p.reservation}
    windows = [
        (r.pk, r.backend_id, r.start, r.end, r.instance.path)
        for r in models.Reservation.objects.filter(
            backend_id=row.backend_id, start__lt=row.end, end__gt=row.start
        ).select_related("instance")
        if r.pk not in gone
    ]
    windows += [
        (
            p.reservation.pk,
            p.reservation.backend_id,
            p.reservation.start,
            p.reservation.end,
            p.reservation.instance.path,
        )
        for p in before
        if p.kind in ("reservation", "move") and p.reservation is not None
    ]
    for pk, backend_id, start, end, path in windows:
        if pk is not None and pk == row.pk:
            continue
        if backend_id == row.backend_id and start < row.end and end > row.start:
            raise ChangeError(
                f"the window overlaps the one of {path} on {row.backend.name}, {_span(start, end)}"
            )
