"""Pure scheduling rules (docs/rules.md): state in, decisions out.

Nothing here imports Django, reads a clock or does I/O. The vocabulary (states,
lanes, error codes, actions) lives in `scheduler.policy.model`.
"""

from .core import Policy
from .estimate import Estimate, estimate
from .queues import tree_nodes

__all__ = ["Estimate", "Policy", "estimate", "tree_nodes"]
