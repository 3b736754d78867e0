"""Allocations between the rows and the rules: one conversion each way.

A stored allocation (`models.Allocation`) becomes the policy's `Allocation` here,
and an operator's change travels to the leader as an input whose detail holds
the allocation in ticks (`change_detail`), read back by `change_of`, so the
leader applies what the operator set at that instant, whatever the row says by
the time it reads the input.
"""

from __future__ import annotations

from typing import Any

from scheduler import models
from scheduler.clock import (
    from_ticks,
    seconds_ticks,
    span_ticks,
    ticks_seconds,
    ticks_span,
    to_ticks,
)
from scheduler.policy import model as m


def allocation_of(row: models.Allocation) -> m.Allocation:
    """The policy's view of a stored allocation (its node's path read with it)."""
    return m.Allocation(
        node=row.instance.path,
        amount=seconds_ticks(row.seconds),
        enforce=row.enforce,
        period=period_of(row),
    )


def period_of(row: models.Allocation) -> m.Period | None:
    if row.period_start is None or row.period_length is None:
        return None
    return m.Period(to_ticks(row.period_start), span_ticks(row.period_length) or 0)


def change_detail(allocation: m.Allocation | None) -> dict[str, Any]:
    """An allocation set (None: removed) as an input's detail, in ticks."""
    if allocation is None:
        return {"seconds": None, "enforce": None, "period": None}
    period = allocation.period
    return {
        "seconds": allocation.amount,
        "enforce": allocation.enforce,
        "period": None if period is None else [period.start, period.length],
    }


def change_of(node: str, detail: dict[str, Any]) -> m.PutAllocation:
    """The policy action of an input's (or a log event's) allocation detail."""
    period = detail.get("period")
    return m.PutAllocation(
        node=node,
        amount=detail.get("seconds"),
        enforce=detail.get("enforce") or m.QUEUE,
        period=None if period is None else m.Period(*period),
    )


def store(node: models.Instance, allocation: m.Allocation | None) -> None:
    """Write the node's allocation row as the policy holds it (None: remove it). For
    allocations set directly, without an operator (a simulation's)."""
    if allocation is None:
        models.Allocation.objects.filter(instance=node).delete()
        return
    period = allocation.period
    models.Allocation.objects.update_or_create(
        instance=node,
        defaults={
            "seconds": ticks_seconds(allocation.amount),
            "enforce": allocation.enforce,
            "period_start": None if period is None else from_ticks(period.start),
            "period_length": None if period is None else ticks_span(period.length),
        },
    )
