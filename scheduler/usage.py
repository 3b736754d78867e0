"""Usage in the window: the fair-share usage charged in a span of time, per instance.

One query answers it for every reader: the leader when it loads, the fair-share
page, the API's usage answer, the db engine's trace and the replay's prior usage
(docs/rules.md, "Fair-share usage"). Allocations read charges one by one
(`usage_charges`) and a node's usage in its period (`node_usage`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Max, Q, QuerySet, Sum

from scheduler import models
from scheduler.clock import to_ticks


@dataclass(frozen=True)
class Used:
    """An instance's usage in the window."""

    total: int  # microseconds charged
    last: datetime  # when its newest charge ended


def usage_in_window(
    *,
    after: datetime,
    before: datetime | None = None,
    through: datetime | None = None,
    instance: models.Instance | None = None,
) -> dict[str, Used]:
    """Usage of charges that ended after `after` (and before `before`, or at the latest
    at `through`), per instance path in path order; only `instance`'s when given."""
    charges = models.UsageCharge.objects.filter(ended_at__gt=after)
    if before is not None:
        charges = charges.filter(ended_at__lt=before)
    if through is not None:
        charges = charges.filter(ended_at__lte=through)
    if instance is not None:
        charges = charges.filter(instance=instance)
    rows = (
        charges.values("instance__path")
        .annotate(total=Sum("microseconds"), last=Max("ended_at"))
        .order_by("instance__path")
    )
    return {row["instance__path"]: Used(int(row["total"]), row["last"]) for row in rows}


def usage_charges(*, since: datetime) -> Iterator[tuple[int, str, int]]:
    """Every charge that ended at or after `since`, one by one, by end: (end in ticks,
    instance path, microseconds). For the leader's load when allocations count them."""
    rows = (
        models.UsageCharge.objects.filter(ended_at__gte=since)
        .order_by("ended_at", "id")
        .values_list("ended_at", "instance__path", "microseconds")
    )
    for ended, path, amount in rows.iterator(chunk_size=10_000):
        yield to_ticks(ended), path, amount


def _below(node: str) -> Q:
    return Q(instance__path=node) | Q(instance__path__startswith=node + "/")


def _node_charges(node: str, since: datetime, through: datetime) -> QuerySet[models.UsageCharge]:
    return models.UsageCharge.objects.filter(
        _below(node), ended_at__gte=since, ended_at__lte=through
    )


def node_usage(node: str, *, since: datetime, through: datetime) -> int:
    """Microseconds charged below tree node `node` (itself included) that ended in
    `[since, through]`: what an allocation on it has consumed in its period."""
    total = _node_charges(node, since, through).aggregate(total=Sum("microseconds"))["total"]
    return int(total or 0)


def node_charges(node: str, *, since: datetime, through: datetime) -> Iterator[tuple[int, int]]:
    """The charges below `node` that ended in `[since, through]`, by end: (end in ticks,
    microseconds), read lazily (a caller may stop early)."""
    rows = (
        _node_charges(node, since, through)
        .order_by("ended_at", "id")
        .values_list("ended_at", "microseconds")
    )
    for ended, amount in rows.iterator(chunk_size=2_000):
        yield to_ticks(ended), amount
