"""Allocations in scenario files (docs/simulate.md): their shape, checks and actions.

A scenario's top-level `allocations` and its `put_allocation` events share one
shape: `{"instance": NODE, "seconds": S, "enforce": "queue"|"safe"|"refuse",
"period": null | {"start": T, "length": L}}`; an event's `"seconds": null` removes
the node's allocation. The scenario reader validates them with these types (a bad
field is a one-line error naming it) and turns them into policy values here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Literal, NotRequired

from pydantic import AfterValidator, ConfigDict, Field, StrictFloat, StrictStr, with_config
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from scheduler.policy import model as m

NODE = re.compile(r"^[^/\s]+(/[^/\s]+){0,2}$")


def _tree_node(value: str) -> str:
    if not NODE.match(value):
        raise PydanticCustomError("tree_node", "must be hub, hub/group or hub/group/project")
    return value


Node = Annotated[StrictStr, AfterValidator(_tree_node)]
Seconds = Annotated[StrictFloat, Field(ge=0, allow_inf_nan=False)]
Length = Annotated[StrictFloat, Field(gt=0, allow_inf_nan=False)]
Time = Annotated[StrictFloat, Field(allow_inf_nan=False)]
Enforce = Literal["queue", "safe", "refuse"]
ToTicks = Callable[[float], int]


@with_config(ConfigDict(extra="ignore"))
class PeriodSpec(TypedDict):
    start: Time
    length: Length


@with_config(ConfigDict(extra="ignore"))
class AllocationSpec(TypedDict):
    instance: Node
    seconds: Seconds
    enforce: NotRequired[Enforce]
    period: NotRequired[PeriodSpec | None]


@with_config(ConfigDict(extra="ignore"))
class PutAllocationSpec(TypedDict):
    instance: Node
    seconds: Seconds | None  # None: remove the node's allocation
    enforce: NotRequired[Enforce]
    period: NotRequired[PeriodSpec | None]


class BadAllocation(ValueError):
    """An allocation a scenario cannot hold; the message is one line naming the field."""


def _period(spec: PeriodSpec | None, to_ticks: ToTicks, where: str) -> m.Period | None:
    if spec is None:
        return None
    length = to_ticks(spec["length"])
    if length <= 0:  # shorter than the time unit
        raise BadAllocation(f"{where}.period.length: must be positive")
    return m.Period(to_ticks(spec["start"]), length)


def initial_allocations(specs: Sequence[AllocationSpec], to_ticks: ToTicks) -> list[m.Allocation]:
    """The scenario's top-level allocations (a node has at most one)."""
    out: list[m.Allocation] = []
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        where = f"allocations[{i}]"
        node = spec["instance"]
        if node in seen:
            raise BadAllocation(f"{where}.instance: a second allocation for {node!r}")
        seen.add(node)
        out.append(
            m.Allocation(
                node=node,
                amount=to_ticks(spec["seconds"]),
                enforce=spec.get("enforce", m.QUEUE),
                period=_period(spec.get("period"), to_ticks, where),
            )
        )
    return out


def put_allocation(spec: PutAllocationSpec, to_ticks: ToTicks, where: str) -> m.PutAllocation:
    """The policy action of a `put_allocation` event (`where` names it in errors)."""
    seconds = spec["seconds"]
    return m.PutAllocation(
        node=spec["instance"],
        amount=None if seconds is None else to_ticks(seconds),
        enforce=spec.get("enforce", m.QUEUE),
        period=_period(spec.get("period"), to_ticks, where),
    )


def named_instances(specs: Iterable[AllocationSpec], actions: Iterable[m.Action]) -> list[str]:
    """The instances (full hub/group/project paths) that allocations name."""
    nodes = [spec["instance"] for spec in specs]
    nodes += [a.node for a in actions if isinstance(a, m.PutAllocation)]
    return [node for node in dict.fromkeys(nodes) if node.count("/") == 2]
