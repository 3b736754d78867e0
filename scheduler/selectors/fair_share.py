"""The fair-share page: the instance tree with shares and usage, and what starts next."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count
from django.utils import timezone

from scheduler import models
from scheduler.clock import from_ticks, ticks_seconds
from scheduler.history.window import window_usage
from scheduler.plans import PlanView
from scheduler.policy import model as m
from scheduler.policy.queues import tree_nodes
from scheduler.rule_settings import deployment_settings
from scheduler.selectors.access import node_shown, shown


@dataclass
class TreeRow:
    path: str
    level: str
    share: float
    usage_seconds: float
    ratio: float | None
    depth: int
    queued: int = 0
    children: list[TreeRow] = field(default_factory=list)


def fair_share_tree(
    *, now: datetime | None = None, visible: frozenset[str] | None = None
) -> list[TreeRow]:
    """Every instance-tree node with its share, usage in the window and usage/share.

    A node is named only if the viewer sees an instance under it (`visible`, None:
    all); the others read "another hub", "another group", "another project".
    """
    now = now or timezone.now()
    window = timedelta(seconds=ticks_seconds(deployment_settings().usage_window))
    usage: dict[str, int] = {}
    for path, total in window_usage(after=now - window).items():
        for ancestor in tree_nodes(path):
            usage[ancestor] = usage.get(ancestor, 0) + total
    queued = dict(
        models.Job.objects.filter(status=m.QUEUED)
        .values_list("instance__path")
        .annotate(n=Count("id"))
    )
    rows = []
    for node in models.Instance.objects.order_by("path"):
        seconds = ticks_seconds(usage.get(node.path, 0))
        ratio = seconds / node.share if node.share > 0 else None
        count = sum(n for path, n in queued.items() if path == node.path or _under(path, node))
        path = node.path if node_shown(node.path, visible) else f"another {node.level}"
        rows.append(TreeRow(path, node.level, node.share, seconds, ratio, node.path.count("/")))
        rows[-1].queued = count
    return rows


def _under(path: str, node: models.Instance) -> bool:
    return path.startswith(node.path + "/")


def fair_share_next(
    plan: PlanView | None, *, limit: int = 10, visible: frozenset[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Per backend, the queued jobs in the order the published plan starts them; another
    instance's job (for a viewer who does not see it) without its id, path or session."""
    names = models.Backend.objects.order_by("name").values_list("name", flat=True)
    order: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    if plan is None:
        return order
    for name in order:
        state = plan.backends.get(name)
        for position, head in enumerate(state.head[:limit] if state else [], 1):
            seen = shown(head["instance"], visible)
            order[name].append(
                {
                    "uid": head["job"] if seen else None,
                    "instance": head["instance"] if seen else "another instance",
                    "session": head["session"] if seen else None,
                    "position": position,
                    "start": from_ticks(head["start"]),
                }
            )
    return order
