"""Pure scheduling rules (docs/rules.md): state in, decisions and answers out.

Nothing here imports Django, reads a clock or does I/O. The vocabulary (states,
lanes, error codes, actions) lives in `scheduler.policy.model`.
"""

from .core import Policy, reservation_warnings
from .plan import (
    LANES,
    Plan,
    PlanEntry,
    Reason,
    lane_depths,
    make_plan,
    wait_reasons,
    waiting_lane,
)
from .queues import tree_nodes

__all__ = [
    "LANES",
    "Plan",
    "PlanEntry",
    "Policy",
    "Reason",
    "lane_depths",
    "make_plan",
    "reservation_warnings",
    "tree_nodes",
    "wait_reasons",
    "waiting_lane",
]
