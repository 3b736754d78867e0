"""Allocations: usage limits per instance-tree node (docs/rules.md, "Allocations").

An allocation gives a node (`hub`, `hub/group` or `hub/group/project`) an amount of
usage per period, the rolling usage window or fixed periods. What the node has
**consumed** at `t` is its usage (runs and holds of its projects, charged when they
end) counted in the period that contains `t`; it is **exhausted** when consumed >=
amount. An exhausted node keeps the jobs below it out of the fair-share lane
(every mode); a `safe` node also keeps out a job that could not finish within what
is left; a `refuse` node also refuses submissions and session creations.

`Allocations` keeps, per allocated node, the charges its current period may
count, so a decision reads a node's consumption without scanning the ledger; the
fair-share descent with allocations (`gated_fair_share`) scans only the subtrees
they constrain.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from math import inf
from typing import Any

from .model import REFUSE, SAFE, Allocation, Job
from .queues import ROOT, BackendQueues, UsageLedger, tree_nodes

FitTime = Callable[[Job], int]  # the time a job can run (duration capped at its runtime limit)
# ...and what that time depends on besides the job (the backend's runtime limit).
FitKey = object


def counts_from(allocation: Allocation, window: int, t: int) -> int | None:
    """The earliest end of a charge that `allocation` counts at `t` (None: none counts,
    before its first fixed period): the period that contains `t` begins there."""
    period = allocation.period
    if period is None:
        return t - window + 1
    return period.containing(t)


class Tracker:
    """One allocation and the charges under its node that its current period may count."""

    __slots__ = ("allocation", "window", "charges", "total")

    def __init__(self, allocation: Allocation, window: int) -> None:
        self.allocation = allocation
        self.window = window
        self.charges: deque[tuple[int, int]] = deque()  # (end, amount), by end
        self.total = 0

    def add(self, end: int, amount: int) -> None:
        charges = self.charges
        if charges and charges[-1][0] > end:
            index = len(charges)
            while index and charges[index - 1][0] > end:
                index -= 1
            charges.insert(index, (end, amount))
        else:
            charges.append((end, amount))
        self.total += amount

    def floor(self, t: int) -> int | None:
        """Charges ending before this no longer count at `t` (or later); None: none counts."""
        return counts_from(self.allocation, self.window, t)

    def consumed(self, t: int) -> int:
        """Usage counted in the period that contains `t` (`t` never goes back)."""
        period = self.allocation.period
        floor = self.floor(t)
        if floor is None:  # before the first fixed period
            return 0
        charges = self.charges
        while charges and charges[0][0] < floor:
            self.total -= charges.popleft()[1]
        if period is not None and charges and charges[-1][0] >= floor + period.length:
            return sum(amount for end, amount in charges if end < floor + period.length)
        return self.total

    def exhausted(self, t: int) -> bool:
        return self.consumed(t) >= self.allocation.amount

    def next_drop(self, t: int) -> int | None:
        """The next instant after `t` at which consumption falls, if nothing more is charged."""
        if not self.consumed(t):
            return None
        period = self.allocation.period
        if period is None:
            return self.charges[0][0] + self.window
        start = period.containing(t)
        assert start is not None  # something is consumed
        return start + period.length

    def frees(self, t: int, need: int) -> int | None:
        """The first instant from `t` at which consumed < amount and consumed + `need` <=
        amount, if nothing more is charged (None: never)."""
        return frees(self.allocation, self.window, t, self.consumed(t), need, iter(self.charges))


def frees(
    allocation: Allocation,
    window: int,
    t: int,
    used: int,
    need: int,
    charges: Iterator[tuple[int, int]],
) -> int | None:
    """The first instant from `t` at which a node that consumed `used` at `t` has
    consumed < amount and consumed + `need` <= amount, if nothing more is charged
    (None: never). `charges`: the (end, amount) it counts at `t`, by end; read only
    as far as needed (callers may pass a lazy query)."""
    amount = allocation.amount

    def fits(consumed: int) -> bool:
        return consumed < amount and consumed + need <= amount

    if fits(used):
        return t
    period = allocation.period
    if period is not None:  # the next period starts empty
        start = period.containing(t)
        return start + period.length if start is not None and fits(0) else None
    if not fits(0):
        return None
    pending: int | None = None  # the end of the charges left so far, once they fit
    for end, charged in charges:
        if pending is not None and end != pending:
            return pending + window
        used -= charged
        if fits(used):
            pending = end
    return None if pending is None else pending + window


class Allocations:
    """The allocations of the instance tree, and what each node has consumed."""

    __slots__ = ("ledger", "items", "below")

    def __init__(self, ledger: UsageLedger) -> None:
        self.ledger = ledger
        self.items: dict[str, Tracker] = {}
        self.below: dict[str, int] = {}  # hub or group -> allocated nodes strictly below it

    def __bool__(self) -> bool:
        return bool(self.items)

    def all(self) -> list[Allocation]:
        return [tracker.allocation for tracker in self.items.values()]

    def get(self, node: str) -> Allocation | None:
        tracker = self.items.get(node)
        return None if tracker is None else tracker.allocation

    # ---------------------------------------------------------------- changes
    def put(self, allocation: Allocation, t: int | None) -> None:
        """Set a node's allocation at `t` (None: before time starts), replacing any."""
        node = allocation.node
        if node not in self.items:
            for ancestor in _ancestors(node):
                self.below[ancestor] = self.below.get(ancestor, 0) + 1
        tracker = Tracker(allocation, self.ledger.window)
        since = None if t is None else tracker.floor(t)
        if t is None or since is not None:
            for end, instance, amount in self.ledger.history(since):
                if node in tree_nodes(instance):
                    tracker.add(end, amount)
        self.items[node] = tracker
        self.ledger.watch = self.charged

    def remove(self, node: str) -> None:
        if self.items.pop(node, None) is None:
            return
        for ancestor in _ancestors(node):
            self.below[ancestor] -= 1
            if not self.below[ancestor]:
                del self.below[ancestor]
        if not self.items:
            self.ledger.watch = None

    def charged(self, instance: str, amount: int, end: int) -> None:
        """The ledger charged `instance`: every allocated node above it counts it."""
        items = self.items
        for node in tree_nodes(instance):
            tracker = items.get(node)
            if tracker is not None:
                tracker.add(end, amount)

    # ---------------------------------------------------------------- answers
    def consumed(self, node: str, t: int) -> int:
        tracker = self.items.get(node)
        return 0 if tracker is None else tracker.consumed(t)

    def refuses(self, instance: str, t: int) -> bool:
        """Whether a submission or session creation of `instance` is refused at `t`."""
        items = self.items
        for node in tree_nodes(instance):
            tracker = items.get(node)
            if tracker is None or tracker.allocation.enforce != REFUSE:
                continue
            if tracker.exhausted(t):
                return True
        return False

    def admits(self, node: str, t: int, budget: int | None) -> tuple[bool, int | None]:
        """Whether jobs below `node` may be eligible at `t`, and the time they may run
        (`budget`: what the `safe` nodes above it leave; None: no bound)."""
        tracker = self.items.get(node)
        if tracker is None:
            return True, budget
        amount = tracker.allocation.amount
        used = tracker.consumed(t)
        if used >= amount:
            return False, None
        if tracker.allocation.enforce == SAFE and (budget is None or amount - used < budget):
            budget = amount - used
        return True, budget

    def constrained_below(self, node: str) -> bool:
        return node in self.below

    def blocked(self, instance: str, need: int, t: int) -> dict[str, Any] | None:
        """Why a fair-share job of `instance` that runs `need` is not eligible at `t`, or None.

        The data of the reason `allocation_exhausted`: the node that frees last, what it
        has consumed, its amount (`seconds`), the time the job needs of it (`needs`, 0
        unless `safe`) and the instant it frees if nothing more is charged (`frees`,
        None: never). When several nodes block, `frees` is the latest of theirs.
        """
        worst: dict[str, Any] | None = None
        for node in tree_nodes(instance):
            tracker = self.items.get(node)
            if tracker is None:
                continue
            allocation = tracker.allocation
            needs = need if allocation.enforce == SAFE else 0
            used = tracker.consumed(t)
            if used < allocation.amount and used + needs <= allocation.amount:
                continue
            frees = tracker.frees(t, needs)
            if worst is None or _later(frees, worst["frees"]):
                worst = {
                    "node": node,
                    "enforce": allocation.enforce,
                    "consumed": used,
                    "seconds": allocation.amount,
                    "needs": needs,
                    "frees": frees,
                }
        return worst

    def next_change(self, t: int, waiting: Callable[[str], bool]) -> int | None:
        """The next instant after `t` at which a node that may keep a waiting job out
        of the fair-share lane consumes less (a charge leaves the rolling window, a
        fixed period begins). `waiting(node)`: whether such jobs wait below `node`."""
        due: int | None = None
        for node, tracker in self.items.items():
            allocation = tracker.allocation
            if allocation.enforce != SAFE and not tracker.exhausted(t):
                continue
            if not waiting(node):
                continue
            drop = tracker.next_drop(t)
            if drop is not None and (due is None or drop < due):
                due = drop
        return due

    def status(self, t: int) -> list[dict[str, Any]]:
        """Every allocation at `t`: node, amount (`seconds`), enforce, period, consumed,
        exhausted, and the current period's bounds (None for the rolling window)."""
        out = []
        for node in sorted(self.items):
            tracker = self.items[node]
            allocation = tracker.allocation
            used = tracker.consumed(t)
            period = allocation.period
            start = None if period is None else period.containing(t)
            end = None if start is None or period is None else start + period.length
            out.append(
                {
                    "node": node,
                    "seconds": allocation.amount,
                    "enforce": allocation.enforce,
                    "period": None if period is None else (period.start, period.length),
                    "consumed": used,
                    "exhausted": used >= allocation.amount,
                    "period_start": start,
                    "period_end": end,
                }
            )
        return out


def _ancestors(node: str) -> list[str]:
    parts = node.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]


def _later(a: int | None, b: int | None) -> bool:
    """Whether instant `a` comes after `b` (None: never, the latest)."""
    if a is None:
        return b is not None
    return b is not None and a > b


# -------------------------------------------------------------- fair share
def gated_fair_share(
    queues: BackendQueues,
    allocations: Allocations,
    *,
    shares: dict[str, float],
    totals: dict[str, int],
    t: int,
    fit_time: FitTime,
    fit_key: FitKey = None,
) -> Job | None:
    """The fair-share descent among the children that have an eligible job, with
    allocations: exhausted nodes and jobs that do not fit a `safe` node are not."""
    children = queues.children
    node, budget = ROOT, None
    job: Job | None = None
    for _level in range(3):
        kids = children.get(node)
        if not kids:
            return None
        best = inf
        tied: list[tuple[str, int | None, Job | None]] = []
        for kid in kids:
            admitted, kid_budget = allocations.admits(kid, t, budget)
            if not admitted:
                continue
            oldest = None
            if kid_budget is not None or allocations.constrained_below(kid):
                oldest = oldest_eligible(queues, allocations, kid, kid_budget, t, fit_time, fit_key)
                if oldest is None:
                    continue
            share = shares.get(kid, 1)
            ratio = totals.get(kid, 0) / share if share > 0 else inf
            if ratio < best or not tied:
                best, tied = ratio, [(kid, kid_budget, oldest)]
            elif ratio == best:
                tied.append((kid, kid_budget, oldest))
        if not tied:
            return None
        if len(tied) == 1:
            node, budget, job = tied[0]
        else:
            node, budget, job = min(
                tied, key=lambda o: o[2].key if o[2] is not None else queues.oldest_key(o[0])
            )
    return job if job is not None else queues.projects[node].oldest()


def oldest_eligible(
    queues: BackendQueues,
    allocations: Allocations,
    node: str,
    budget: int | None,
    t: int,
    fit_time: FitTime,
    fit_key: FitKey = None,
) -> Job | None:
    """The oldest fair-share job below an admitted `node` that allocations let start."""
    if node.count("/") == 2:
        project = queues.projects[node]
        if budget is None:
            return project.oldest()
        return project.oldest_within(budget, fit_time, fit_key)
    best: Job | None = None
    for child in queues.children.get(node, ()):
        admitted, child_budget = allocations.admits(child, t, budget)
        if not admitted:
            continue
        if child_budget is None and not allocations.constrained_below(child):
            job: Job | None = queues.oldest_job(child)
        else:
            job = oldest_eligible(queues, allocations, child, child_budget, t, fit_time, fit_key)
        if job is not None and (best is None or job.key < best.key):
            best = job
    return best


__all__ = ["Allocations", "Tracker", "counts_from", "frees", "gated_fair_share", "oldest_eligible"]
