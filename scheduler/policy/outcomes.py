"""What two futures say, side by side (docs/what-if.md): waits per instance-tree node,
use of each backend, the sessions a change binds or closes, and timeline spans.

Numbers are split by where the jobs come from: jobs known at `now` (queued or
running) and synthetic arrivals, so a difference can be traced to one or the other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import model as m
from .futures import Future, JobRun, SessionRun
from .queues import tree_nodes

KNOWN, SYNTHETIC, ALL = "known", "synthetic", "all"
ORIGINS = (KNOWN, SYNTHETIC, ALL)
MAX_SPANS = 400  # timeline bars per backend and future before contiguous lanes merge


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitStats:
    """Jobs of one origin that wait during a future.

    `p50`/`p95`: wait from submission to start, nearest rank; a job still queued at
    the end counts with its wait so far, so a percentile that reaches such a job is
    only a lower bound (`*_at_least`). `queued_time`: time spent queued inside the
    future, summed, for every job (the part of a difference a job accounts for).
    """

    waiting: int  # queued at `now` or arriving later
    started: int
    still_queued: int
    ended_unstarted: int  # failed or cancelled before starting (a window's end, a max TTL)
    p50: int | None
    p95: int | None
    p50_at_least: bool
    p95_at_least: bool
    queued_time: int


def percentile(values: Sequence[tuple[int, bool]], q: int) -> tuple[int | None, bool]:
    """Nearest-rank percentile of sorted (wait, censored) pairs, and whether it is a bound."""
    if not values:
        return None, False
    rank = max(1, -(-len(values) * q // 100))
    value = values[int(rank) - 1][0]
    return value, any(censored and wait <= value for wait, censored in values)


class _Waits:
    """Running totals of the waits of some jobs; `merge` adds another's (a subtree's)."""

    __slots__ = ("waits", "started", "still", "unstarted", "queued_time")

    def __init__(self) -> None:
        self.waits: list[tuple[int, bool]] = []
        self.started = self.still = self.unstarted = self.queued_time = 0

    def add(self, job: JobRun, now: int, end: int) -> None:
        if job.started is not None and job.started < now:
            return  # running at `now`: it waits no more
        stop = end
        if job.started is not None:
            self.started += 1
            self.waits.append((job.started - job.submitted, False))
            stop = job.started
        elif job.ended is not None:
            self.unstarted += 1
            stop = job.ended
        else:
            self.still += 1
            self.waits.append((end - job.submitted, True))
        self.queued_time += max(0, min(stop, end) - max(job.submitted, now))

    def merge(self, other: _Waits) -> None:
        self.waits += other.waits
        self.started += other.started
        self.still += other.still
        self.unstarted += other.unstarted
        self.queued_time += other.queued_time

    def stats(self) -> WaitStats:
        waits = sorted(self.waits)
        p50, p50_bound = percentile(waits, 50)
        p95, p95_bound = percentile(waits, 95)
        return WaitStats(
            waiting=self.started + self.still + self.unstarted,
            started=self.started,
            still_queued=self.still,
            ended_unstarted=self.unstarted,
            p50=p50,
            p95=p95,
            p50_at_least=p50_bound,
            p95_at_least=p95_bound,
            queued_time=self.queued_time,
        )


def wait_stats(jobs: Iterable[JobRun], now: int, end: int) -> WaitStats:
    """The waits of `jobs` during a future from `now` to `end`."""
    waits = _Waits()
    for job in jobs:
        waits.add(job, now, end)
    return waits.stats()


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeRow:
    """One instance-tree node (hub, group or project): its jobs' waits in both futures."""

    node: str
    depth: int
    stats: dict[str, tuple[WaitStats, WaitStats]]  # origin -> (without, with)

    def delta_queued_time(self, origin: str) -> int:
        without, with_ = self.stats[origin]
        return with_.queued_time - without.queued_time


def _by_node(future: Future) -> dict[tuple[str, str], _Waits]:
    """Waits per (tree node, origin): one pass over the jobs, then summed up the tree."""
    leaves: dict[tuple[str, bool], _Waits] = {}
    now, end = future.now, future.end
    for job in future.jobs:
        key = (job.instance, job.synthetic)
        waits = leaves.get(key)
        if waits is None:
            waits = leaves[key] = _Waits()
        waits.add(job, now, end)
    nodes: dict[tuple[str, str], _Waits] = {}
    for (instance, synthetic), waits in leaves.items():
        for node in tree_nodes(instance):
            for origin in (SYNTHETIC if synthetic else KNOWN, ALL):
                total = nodes.get((node, origin))
                if total is None:
                    total = nodes[node, origin] = _Waits()
                total.merge(waits)
    return nodes


def node_rows(without: Future, with_: Future) -> list[NodeRow]:
    """Every node with jobs in either future, in tree order."""
    sides = [_by_node(without), _by_node(with_)]
    empty = _Waits().stats()
    rows = []
    for node in sorted({node for side in sides for node, _ in side}):
        stats = {}
        for origin in ORIGINS:
            pair = [
                side[node, origin].stats() if (node, origin) in side else empty for side in sides
            ]
            stats[origin] = (pair[0], pair[1])
        rows.append(NodeRow(node=node, depth=node.count("/"), stats=stats))
    return rows


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendUse:
    """How a backend spends a future: running, and why it idles."""

    span: int
    busy: int
    started: int
    paused: int  # idle because paused
    exclusive_idle: int  # idle inside an exclusive window
    held: int  # idle while an active session holds it (outside exclusive windows)
    status: str

    @property
    def idle(self) -> int:
        return self.span - self.busy

    @property
    def utilisation(self) -> float:
        return self.busy / self.span if self.span else 0.0


def busy_spans(future: Future) -> dict[str, list[JobRun]]:
    """Jobs that ran during the future, per backend, in start order."""
    out: dict[str, list[JobRun]] = {name: [] for name in future.backends}
    for job in future.jobs:
        started = job.started
        if started is not None and started <= future.end and _stop(job, future) > future.now:
            out[job.backend].append(job)
    for runs in out.values():
        runs.sort(key=lambda j: (j.started or 0, j.id))
    return out


def _stop(job: JobRun, future: Future) -> int:
    stop = job.ended if job.ended is not None else job.end_due
    return future.end if stop is None else min(stop, future.end)


def backend_use(future: Future) -> dict[str, BackendUse]:
    span = future.end - future.now
    out = {}
    for name, runs in busy_spans(future).items():
        backend = future.backends[name]
        busy = [(max(j.started or 0, future.now), _stop(j, future)) for j in runs]
        idle = _complement(busy, future.now, future.end)
        paused = _length(idle) if backend.status != m.ONLINE else 0
        if paused:
            idle = []
        exclusive = [(w.start, w.end) for w in backend.windows if w.exclusive]
        in_windows = _intersect(idle, exclusive)
        outside = _intersect(idle, _complement(exclusive, future.now, future.end))
        out[name] = BackendUse(
            span=span,
            busy=_length(busy),
            started=sum(1 for j in runs if (j.started or 0) >= future.now),
            paused=paused,
            exclusive_idle=_length(in_windows),
            held=_length(_intersect(outside, backend.holds)),
            status=backend.status,
        )
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionFate:
    """A session whose future differs from quietly running: bound to a window, closed at
    a window's end, or closed at its max TTL, in either future."""

    id: str
    instance: str
    backend: str
    state: str
    fates: tuple[SessionRun, SessionRun]  # without, with

    @staticmethod
    def notable(run: SessionRun) -> bool:
        newly_bound = run.bound is not None and run.bound != run.bound_before
        closed = run.closed_reason in (m.CLOSED_RESERVATION_ENDED, m.CLOSED_EXPIRED)
        return newly_bound or closed


def session_fates(without: Future, with_: Future) -> list[SessionFate]:
    runs = {run.id: run for run in with_.sessions}
    out = []
    for before in without.sessions:
        after = runs[before.id]
        if SessionFate.notable(before) or SessionFate.notable(after):
            out.append(
                SessionFate(
                    id=before.id,
                    instance=before.instance,
                    backend=before.backend,
                    state=before.state,
                    fates=(before, after),
                )
            )
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """A bar of the timeline: contiguous jobs of one lane (or of several, when merged)."""

    start: int
    end: int
    lane: str  # a lane, or "mixed"
    synthetic: int
    jobs: int
    instances: dict[str, int]


def timeline(future: Future, max_spans: int = MAX_SPANS) -> dict[str, list[Span]]:
    """Per backend, the busy spans of a future: contiguous jobs of a lane as one bar;
    when a backend has more bars than `max_spans`, contiguous bars of any lane too."""
    out = {}
    for name, runs in busy_spans(future).items():
        bars = _merge(future, runs, by_lane=True)
        if len(bars) > max_spans:
            bars = _merge(future, runs, by_lane=False)
        out[name] = bars
    return out


def _merge(future: Future, runs: list[JobRun], *, by_lane: bool) -> list[Span]:
    bars: list[Span] = []
    for job in runs:
        start, stop = max(job.started or 0, future.now), _stop(job, future)
        lane = job.lane or m.FAIR_SHARE
        last = bars[-1] if bars else None
        if last is not None and last.end == start and (last.lane == lane or not by_lane):
            counts = Counter(last.instances)
            counts[job.instance] += 1
            bars[-1] = Span(
                start=last.start,
                end=stop,
                lane=last.lane if last.lane == lane else "mixed",
                synthetic=last.synthetic + job.synthetic,
                jobs=last.jobs + 1,
                instances=dict(counts),
            )
        else:
            bars.append(
                Span(
                    start=start,
                    end=stop,
                    lane=lane,
                    synthetic=int(job.synthetic),
                    jobs=1,
                    instances={job.instance: 1},
                )
            )
    return bars


# ----------------------------------------------------------------- intervals
def _length(spans: Iterable[tuple[int, int]]) -> int:
    return sum(stop - start for start, stop in spans)


def _complement(spans: Sequence[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    """The parts of [lo, hi) that no span covers (spans sorted, maybe overlapping)."""
    out = []
    at = lo
    for start, stop in sorted(spans):
        if start > at:
            out.append((at, min(start, hi)))
        at = max(at, stop)
        if at >= hi:
            break
    if at < hi:
        out.append((at, hi))
    return [(a, b) for a, b in out if b > a]


def _intersect(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """The overlap of two sorted lists of disjoint spans."""
    out = []
    i = j = 0
    a, b = sorted(a), sorted(b)
    while i < len(a) and j < len(b):
        start, stop = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if stop > start:
            out.append((start, stop))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out
