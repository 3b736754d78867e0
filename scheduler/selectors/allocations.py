"""Allocations as people see them: each node's period, what it consumed, what is left,
and when time frees up (docs/rules.md, "Allocations").

One reading for every page, the API, the admin and `manage.py allocation list`, so
they show the same numbers. Consumption is read from the usage charges the
leader wrote (a node's runs and holds that ended in its current period); when it
frees is the policy's own answer (`policy.allocations.frees`), fed the charges
lazily. Nothing here runs the rules or reads the leader's memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.utils import timezone

from scheduler import models
from scheduler.allocations import allocation_of
from scheduler.clock import from_ticks, ticks_seconds, to_ticks
from scheduler.policy import model as m
from scheduler.policy.allocations import counts_from, frees
from scheduler.policy.queues import tree_nodes
from scheduler.rule_settings import deployment_settings
from scheduler.selectors.access import node_shown
from scheduler.usage import node_charges, node_usage


@dataclass(frozen=True, kw_only=True)
class AllocationStatus:
    """One node's allocation at `at`. Seconds are fractional; times are datetimes."""

    node: str
    seconds: float
    enforce: str
    rolling: bool  # the rolling usage window (else fixed periods)
    period_start: datetime  # rolling: `at` minus the window
    period_end: datetime  # rolling: `at`; fixed: when the current (or first) period ends
    started: bool  # False before the first fixed period: nothing counts yet
    consumed: float
    exhausted: bool  # consumed >= seconds
    frees: datetime | None  # when consumption falls below the allocation if nothing
    # more is charged (None: not exhausted, or never in this period)
    at: datetime

    @property
    def left(self) -> float:
        return max(self.seconds - self.consumed, 0.0)

    @property
    def used_percent(self) -> float:
        """How much of the allocation is used, 0-100 (a bar's length)."""
        if self.seconds <= 0:
            return 100.0
        return min(100.0, 100.0 * self.consumed / self.seconds)


def allocations_status(
    *, now: datetime | None = None, nodes: Iterable[str] | None = None
) -> list[AllocationStatus]:
    """Every allocation (only those of `nodes`, when given) at `now`, by node."""
    rows = models.Allocation.objects.select_related("instance").order_by("instance__path")
    if nodes is not None:
        rows = rows.filter(instance__path__in=list(nodes))
    at = now or timezone.now()
    return [status_of(row, at) for row in rows]


def status_of(row: models.Allocation, at: datetime) -> AllocationStatus:
    """One stored allocation's status at `at`."""
    allocation = allocation_of(row)
    window = deployment_settings().usage_window
    t = to_ticks(at)
    since = counts_from(allocation, window, t)
    period = allocation.period
    used = 0
    if since is not None:
        used = node_usage(allocation.node, since=from_ticks(since), through=at)
    exhausted = used >= allocation.amount
    freed = None
    if exhausted and since is not None:
        charges = node_charges(allocation.node, since=from_ticks(since), through=at)
        freed = frees(allocation, window, t, used, 0, charges)
    if period is None:
        start, end = t - window, t
    else:
        first = period.containing(t)
        start = period.start if first is None else first
        end = start + period.length
    return AllocationStatus(
        node=allocation.node,
        seconds=row.seconds,
        enforce=allocation.enforce,
        rolling=period is None,
        period_start=from_ticks(start),
        period_end=from_ticks(end),
        started=since is not None,
        consumed=ticks_seconds(used),
        exhausted=exhausted,
        frees=None if freed is None else from_ticks(freed),
        at=at,
    )


@dataclass(frozen=True)
class AllocationBar:
    """An allocation as the fair-share page draws it: the node by name, or "another hub"."""

    name: str
    status: AllocationStatus


def allocation_bars(
    *, visible: frozenset[str] | None = None, now: datetime | None = None
) -> list[AllocationBar]:
    """Every allocated node's usage bar; a node the viewer does not see (`visible`, None:
    all) is named by its level only."""
    bars = []
    for status in allocations_status(now=now):
        level = ("hub", "group", "project")[status.node.count("/")]
        name = status.node if node_shown(status.node, visible) else f"another {level}"
        bars.append(AllocationBar(name, status))
    return bars


def instance_allocations(path: str, *, now: datetime | None = None) -> list[AllocationStatus]:
    """The allocations on an instance's path (its hub, group and project), top down."""
    return allocations_status(now=now, nodes=tree_nodes(path))


def binding(statuses: Iterable[AllocationStatus]) -> AllocationStatus | None:
    """The allocation that limits an instance most: an exhausted one (the one that
    frees last, as the rules name it), else the one with the least left."""
    statuses = list(statuses)
    exhausted = [s for s in statuses if s.exhausted]
    if exhausted:
        return max(exhausted, key=_freeing)
    return min(statuses, key=lambda s: s.left, default=None)


def refusing(path: str, *, now: datetime | None = None) -> AllocationStatus | None:
    """The exhausted `refuse` allocation on an instance's path that refuses its
    submissions and sessions now, or None (the common case, no `refuse` allocation on
    the path, costs one small written-out statement)."""
    if not _any_refusing(tree_nodes(path)):
        return None
    rows = models.Allocation.objects.filter(
        instance__path__in=tree_nodes(path), enforce=m.REFUSE
    ).select_related("instance")
    at = now or timezone.now()
    return binding(s for s in (status_of(row, at) for row in rows) if s.exhausted)


_ALLOCATIONS, _INSTANCES = models.Allocation._meta.db_table, models.Instance._meta.db_table
ANY_REFUSING_SQL = (
    f"SELECT 1 FROM {_ALLOCATIONS} a JOIN {_INSTANCES} i ON i.id = a.instance_id "
    "WHERE a.enforce = %s AND i.path IN (%s, %s, %s) LIMIT 1"
)


def _any_refusing(nodes: tuple[str, str, str]) -> bool:
    """Whether a `refuse` allocation sits on one of `nodes` (exhausted or not)."""
    with connection.cursor() as cursor:
        cursor.execute(ANY_REFUSING_SQL, [m.REFUSE, *nodes])
        return cursor.fetchone() is not None


def refusal_text(status: AllocationStatus) -> str:
    """Why a submission or session is refused, in words: the node, what it consumed of
    its allocation, and when time frees up."""
    used = f"{status.node} has used {status.consumed:g} s of its {status.seconds:g} s allocation"
    if status.frees is not None:
        when = f"time frees up at {status.frees:%Y-%m-%d %H:%M:%S} UTC"
    elif status.seconds <= 0:
        when = "an allocation of 0 s never frees up; ask an operator to raise it"
    else:
        when = "no time frees up in this period; ask an operator to raise it"
    return f"{used}; {when}."


def _freeing(status: AllocationStatus) -> tuple[int, datetime]:
    # never (None) frees last
    return (1, status.at) if status.frees is None else (0, status.frees)
