"""Incremental indices behind the lanes and the fair-share usage.

They let one scheduling decision look only at the instance tree's nodes that
have work, never rescanning the queue.
"""

from __future__ import annotations

from bisect import insort
from collections import deque
from collections.abc import Iterable
from functools import lru_cache
from heapq import heappop, heappush
from itertools import count

from .model import QUEUED, WAITING_STATES, Job, Session

ROOT = ""
_tickets = count()  # tie-breaker keeping heap entries comparable


@lru_cache(maxsize=65536)
def tree_nodes(instance: str) -> tuple[str, str, str]:
    """The hub, hub/group and hub/group/project nodes of an instance path."""
    parts = instance.split("/")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"instance {instance!r} is not hub/group/project")
    hub, group, _ = parts
    return hub, f"{hub}/{group}", instance


class ProjectQueue:
    """Queued jobs of one instance on one backend, waiting for the fair-share lane.

    Jobs outside sessions wait in `loose`; sessions that are open or inactive
    and have queued jobs wait in `waiting`, a heap keyed by their oldest job.
    Both are trimmed lazily, so a pick never scans the queue.
    """

    __slots__ = ("loose", "waiting")

    def __init__(self) -> None:
        self.loose: deque[Job] = deque()
        self.waiting: list[tuple[tuple[int, int], int, Session]] = []

    def offer(self, session: Session) -> None:
        """Session `session` waits, or its oldest job changed while it waits."""
        head = session.head()
        if head is not None:
            heappush(self.waiting, (head.key, next(_tickets), session))

    def oldest(self) -> Job | None:
        """Oldest job outside the backend's active session."""
        loose = self.loose
        while loose and loose[0].status != QUEUED:
            loose.popleft()
        waiting = self.waiting
        while waiting:
            key, _, session = waiting[0]
            head = session.head() if session.state in WAITING_STATES else None
            if head is not None and head.key == key:
                break
            heappop(waiting)
        if not waiting:
            return loose[0] if loose else None
        head = waiting[0][2].head()
        if loose and loose[0].key < waiting[0][0]:
            return loose[0]
        return head


class BackendQueues:
    """Per-backend queues, with counts of fair-share-eligible jobs per tree node."""

    __slots__ = ("projects", "count", "children", "queued")

    def __init__(self) -> None:
        self.queued = 0  # every queued job of the backend, whatever its lane
        self.projects: dict[str, ProjectQueue] = {}
        self.count: dict[str, int] = {}
        self.children: dict[str, set[str]] = {}  # node -> children holding eligible jobs

    def project(self, instance: str) -> ProjectQueue:
        queue = self.projects.get(instance)
        if queue is None:
            queue = self.projects[instance] = ProjectQueue()
        return queue

    def adjust(self, instance: str, delta: int) -> None:
        """Add `delta` eligible jobs to an instance and its ancestors."""
        if not delta:
            return
        count = self.count
        children = self.children
        parent = ROOT
        for node in tree_nodes(instance):
            before = count.get(node, 0)
            after = before + delta
            count[node] = after
            if before == 0:
                children.setdefault(parent, set()).add(node)
            elif after == 0:
                children[parent].discard(node)
            parent = node

    def oldest_key(self, node: str) -> tuple[int, int]:
        """Submission key of the oldest eligible job under a tree node."""
        if node.count("/") == 2:
            job = self.projects[node].oldest()
            assert job is not None
            return job.key
        return min(self.oldest_key(child) for child in self.children[node])


class UsageLedger:
    """Charged runs and holds in a rolling window, with totals per tree node."""

    __slots__ = ("window", "totals", "entries")

    def __init__(self, window: int) -> None:
        self.window = window
        self.totals: dict[str, int] = {}
        self.entries: deque[tuple[int, str, int]] = deque()  # (end, instance, amount), by end

    def charge(self, instance: str, amount: int, end: int) -> None:
        if amount <= 0:
            return
        totals = self.totals
        for node in tree_nodes(instance):
            totals[node] = totals.get(node, 0) + amount
        entry = (end, instance, amount)
        if self.entries and self.entries[-1][0] > end:
            insort(self.entries, entry)
        else:
            self.entries.append(entry)

    def load(self, entries: Iterable[tuple[int, str, int]]) -> None:
        for end, instance, amount in entries:
            self.charge(instance, amount, end)

    def expire(self, now: int) -> None:
        """Drop charges that ended a whole window or more before `now`."""
        cutoff = now - self.window
        entries = self.entries
        totals = self.totals
        while entries and entries[0][0] <= cutoff:
            _, instance, amount = entries.popleft()
            for node in tree_nodes(instance):
                totals[node] -= amount

    def of(self, node: str) -> int:
        return self.totals.get(node, 0)
