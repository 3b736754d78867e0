"""Incremental indices behind the lanes and the fair-share usage.

They let one scheduling decision look only at the instance tree's nodes that
have work, never rescanning the queue.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Iterable, Iterator
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

    __slots__ = ("loose", "waiting", "added", "unfit")

    def __init__(self) -> None:
        self.loose: deque[Job] = deque()
        self.waiting: list[tuple[tuple[int, int], int, Session]] = []
        self.added = 0  # counts jobs (and sessions) that joined: a fit search's result expires
        self.unfit: tuple[int, int, object] | None = None  # (added, budget, key): none fit

    def offer(self, session: Session) -> None:
        """Session `session` waits, or its oldest job changed while it waits."""
        self.added += 1
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

    def oldest_within(self, budget: int, time: Callable[[Job], int], key: object) -> Job | None:
        """Oldest job outside the backend's active session whose `time` is at most
        `budget` (allocations of `safe` mode, docs/rules.md).

        Scans the project's queue, but remembers a search that found none: until a
        job joins (or `key`, what `time` depends on besides the job, changes), no
        smaller budget finds one either.
        """
        unfit = self.unfit
        if unfit is not None and unfit[0] == self.added and budget <= unfit[1] and unfit[2] == key:
            return None
        job = self.oldest_fitting(lambda job: time(job) <= budget)
        if job is None:
            self.unfit = (self.added, budget, key)
        return job

    def oldest_fitting(self, fits: Callable[[Job], bool]) -> Job | None:
        """Oldest job outside the backend's active session for which `fits` holds."""
        best = None
        for job in self.loose:
            if job.status == QUEUED and fits(job):
                best = job
                break
        seen: set[str] = set()
        for _, _, session in self.waiting:
            if session.id in seen or session.state not in WAITING_STATES:
                continue
            seen.add(session.id)
            for job in session.queue:
                if best is not None and job.key >= best.key:
                    break
                if job.status == QUEUED and fits(job):
                    best = job
                    break
        return best


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

    def oldest_job(self, node: str) -> Job:
        """The oldest eligible job under a tree node that has one."""
        if node.count("/") == 2:
            job = self.projects[node].oldest()
            assert job is not None
            return job
        return min((self.oldest_job(child) for child in self.children[node]), key=_key)


def _key(job: Job) -> tuple[int, int]:
    return job.key


class _Past(list[tuple[int, str, int]]):
    """Charges that left the rolling window, by end. Copies share the (immutable) entries."""

    def __deepcopy__(self, memo: dict[int, object]) -> _Past:
        return _Past(self)


class UsageLedger:
    """Charged runs and holds in a rolling window, with totals per tree node.

    Charges that leave the window are kept in `past` (fixed allocation periods may
    reach further back than the window) until `forget_before` drops them.
    """

    __slots__ = ("window", "totals", "entries", "past", "watch", "cutoff", "forgotten")

    def __init__(self, window: int) -> None:
        self.window = window
        self.totals: dict[str, int] = {}
        self.entries: deque[tuple[int, str, int]] = deque()  # (end, instance, amount), by end
        self.past = _Past()
        self.watch: Callable[[str, int, int], None] | None = None  # told of every charge
        self.cutoff: int | None = None  # charges that ended at or before this have left
        self.forgotten: int | None = None  # charges that left and ended before this are gone

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
        if self.watch is not None:
            self.watch(instance, amount, end)

    def load(self, entries: Iterable[tuple[int, str, int]]) -> None:
        for end, instance, amount in entries:
            self.charge(instance, amount, end)

    def expire(self, now: int) -> None:
        """Drop charges that ended a whole window or more before `now`."""
        cutoff = now - self.window
        if self.cutoff is None or cutoff > self.cutoff:
            self.cutoff = cutoff
        entries = self.entries
        totals = self.totals
        past = self.past
        while entries and entries[0][0] <= cutoff:
            entry = entries.popleft()
            _, instance, amount = entry
            for node in tree_nodes(instance):
                totals[node] -= amount
            if past and past[-1][0] > entry[0]:
                insort(past, entry)
            else:
                past.append(entry)

    def of(self, node: str) -> int:
        return self.totals.get(node, 0)

    def totals_at(self, t: int) -> dict[str, int]:
        """Usage per tree node as seen at `t` (the charges with `t - window < end <= t`),
        also when the window has moved past `t` (a policy that looked ahead, for
        allocations)."""
        entries = self.entries
        if (self.cutoff is None or t - self.window >= self.cutoff) and not (
            entries and entries[-1][0] > t
        ):
            self.expire(t)
            return self.totals
        totals: dict[str, int] = {}
        for end, instance, amount in self.history(t - self.window + 1):
            if end > t:
                continue
            for node in tree_nodes(instance):
                totals[node] = totals.get(node, 0) + amount
        return totals

    def history(self, since: int | None = None) -> Iterator[tuple[int, str, int]]:
        """Every charge kept whose end is `since` or later (None: all), by end."""
        past = self.past
        start = 0 if since is None else bisect_left(past, (since,))
        for i in range(start, len(past)):
            yield past[i]
        for entry in self.entries:
            if since is None or entry[0] >= since:
                yield entry

    def forget_before(self, t: int) -> None:
        """Drop the kept charges that left the window and ended before `t`."""
        del self.past[: bisect_left(self.past, (t,))]
        if self.forgotten is None or t > self.forgotten:
            self.forgotten = t
