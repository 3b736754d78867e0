"""`/instances/usage`: what the selected instance used, and its allocation as IBM words it.

The real client reads this before every job (`QiskitRuntimeService._check_instance_usage`)
and warns "This instance has met its usage limit..." by itself when
`usage_limit_reached` is true and `usage_limit_seconds` minus
`usage_consumed_seconds` leaves nothing. Without an allocation on the instance's
path the allocation and limit fields are left out, as IBM leaves them out when no
limit is set: the client's `usage()` subtracts from `usage_limit_seconds`, so a
null one would break it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router

from scheduler.api.auth import instance_crn, principal
from scheduler.api.present import iso
from scheduler.api.schemas import REFUSALS, UsageOut
from scheduler.clock import ticks_seconds
from scheduler.selectors.allocations import binding, instance_allocations
from scheduler.usage import usage_in_window

PLAN_ID = "qdash"  # the plan every qdash instance is on

router = Router(tags=["usage"])


@router.get("/instances/usage", response={200: UsageOut} | REFUSALS, exclude_none=True)
def instances_usage(request: HttpRequest) -> dict[str, Any]:
    """Usage of the selected instance in its period: the period of the allocation that
    limits it (on its hub, group or project), else the fair-share usage window."""
    node = principal(request).require_instance()
    now = timezone.now()
    window = int(settings.QDASH["USAGE_WINDOW"])
    limit = binding(instance_allocations(node.path, now=now))
    answer: dict[str, Any] = {
        "instance_id": instance_crn(node.path),
        "instance": instance_crn(node.path),
        "plan_id": PLAN_ID,
        "usage_window_seconds": window,
        "share": node.share,
    }
    if limit is None:
        used = usage_in_window(after=now - timedelta(seconds=window), instance=node)
        return answer | {
            "usage_period": _period(now - timedelta(seconds=window), now),
            "usage_consumed_seconds": ticks_seconds(used[node.path].total if used else 0),
        }
    return answer | {
        "usage_period": _period(limit.period_start, limit.period_end),
        "usage_consumed_seconds": limit.consumed,
        "usage_allocation_seconds": limit.seconds,
        "usage_limit_seconds": limit.seconds,
        "usage_limit_reached": limit.exhausted,
        "usage_allocation_node": limit.node,
        "usage_frees_at": iso(limit.frees),
    }


def _period(start: datetime, end: datetime) -> dict[str, str | None]:
    return {"start_time": iso(start), "end_time": iso(end)}
