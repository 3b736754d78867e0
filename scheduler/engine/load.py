"""Loading: the policy built from the rows that can still change.

A process loads when it becomes leader, and again after a conflict (a row it
writes changed under it) or a failed step; otherwise the leader keeps its
memory up to date step by step. Inputs still pending are not loaded: the next
step applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, Max, OuterRef, Q, QuerySet

from scheduler import models
from scheduler.allocations import allocation_of, change_of
from scheduler.clock import from_ticks, to_ticks
from scheduler.engine.rows import (
    JOB_COLUMNS,
    Sample,
    Written,
    backend_of,
    job_from_row,
    reservation_of,
    session_from_row,
)
from scheduler.policy import Policy
from scheduler.policy import model as m
from scheduler.policy.allocations import counts_from
from scheduler.usage import usage_charges, usage_in_window

Kind = models.Input.Kind
# Operators' changes: their inputs say what they replaced.
OPERATOR_KINDS = (Kind.BACKEND, Kind.RESERVATION, Kind.SHARE, Kind.ALLOCATION)


@dataclass(frozen=True)
class Loaded:
    """A policy loaded from the rows, and the record of those rows."""

    policy: Policy
    written: Written
    decided: int | None  # the last instant a previous leader decided (when resuming)


def load(
    settings: m.Settings, now: int, *, resumes: bool = False, since: int | None = None
) -> Loaded:
    """The policy of the rows that can still change at `now`.

    `resumes`: a leader taking over a running system starts at the last instant
    already decided (the last one in the event log), never before it. `since`: the
    usage charges that ended since then are loaded one by one (as they are anyway,
    back to where its allocations count them, when a node has one).
    """
    policy = Policy(settings)
    written = Written()
    replaced = _replaced()
    backends = list(models.Backend.objects.all())
    written.backends = {b.name: b.pk for b in backends}
    for row in backends:
        backend = backend_of(row)
        if (Kind.BACKEND, row.name) in replaced:
            backend.max_runtime = replaced[Kind.BACKEND, row.name]
        policy.add_backend(backend)
    for reservation in _reservations(written, replaced):
        policy.add_reservation(reservation)
    _load_tree(policy, written, now, since, replaced)
    job_rows = _job_rows()
    sessions = _sessions(written, job_rows)
    jobs = _jobs(written, job_rows, sessions)
    holds = {
        b.name: (sessions[b.hold_session_id].id, to_ticks(b.hold_since))
        for b in backends
        if b.hold_session_id in sessions and b.hold_since is not None
    }
    policy.restore(sessions.values(), jobs, holds)
    decided = None
    if resumes:
        last = models.Event.objects.aggregate(last=Max("at"))["last"]
        if last is not None:
            policy.now = decided = to_ticks(last)
    written.samples = _samples(written.backends)
    return Loaded(policy=policy, written=written, decided=decided)


def refresh(written: Written) -> None:
    """The small maps of `written` read again from the rows (backends, instances, the
    newest queue samples): a standby's memory taking over keeps its jobs and sessions."""
    written.backends = dict(models.Backend.objects.values_list("name", "pk"))
    written.instances = dict(models.Instance.objects.values_list("path", "pk"))
    written.samples = _samples(written.backends)


def _replaced() -> dict[tuple[str, str], Any]:
    """What the oldest pending change of each backend, reservation, share and allocation
    replaced (its `before`): the leader has not applied it yet, but its row already
    holds it, so a load starts from the state before it (and the change, applied next,
    logs what it replaced)."""
    replaced: dict[tuple[str, str], Any] = {}
    seen: set[tuple[str, str]] = set()
    rows = models.Input.objects.filter(kind__in=OPERATOR_KINDS).order_by("id")
    for kind, target, detail in rows.values_list("kind", "target", "detail"):
        if (kind, target) in seen:
            continue
        seen.add((kind, target))
        if "before" in detail:
            replaced[kind, target] = detail["before"]
    return replaced


def _reservations(written: Written, replaced: dict[tuple[str, str], Any]) -> list[m.Reservation]:
    """The windows that have not ended, as the leader last applied them."""
    changed = {target for kind, target in replaced if kind == Kind.RESERVATION}
    rows = models.Reservation.objects.select_related("backend", "instance")
    out = [reservation_of(r) for r in rows.filter(ended=False).exclude(pk__in=_ids(changed))]
    stored = {str(r.pk): r for r in rows.filter(pk__in=_ids(changed))}
    for rid in sorted(changed):
        window = replaced[Kind.RESERVATION, rid]
        if window is None:  # added: not applied yet
            continue
        row = stored.get(rid)
        started, ended = (row.started, row.ended) if row else (window["started"], window["ended"])
        if ended:
            continue
        if row is None:  # deleted: its events will not name the row
            written.gone.add(rid)
        out.append(
            m.Reservation(
                id=rid,
                backend=window["backend"],
                instance=window["instance"],
                start=window["start"],
                end=window["end"],
                exclusive=window["exclusive"],
                started=started,
                ended=ended,
            )
        )
    return out


def _ids(targets: set[str]) -> list[int]:
    return [int(target) for target in targets if target.isdigit()]


def _load_tree(
    policy: Policy,
    written: Written,
    now: int,
    since: int | None,
    replaced: dict[tuple[str, str], Any],
) -> None:
    """The instance tree's keys, shares and allocations, and the usage they count at `now`.

    Without allocations, each instance's usage in the window is one total that
    leaves with its newest charge. Allocations count charges one by one, some from
    before the window (a fixed period's): those are loaded one by one, back to the
    earliest any allocation counts (or `since`); `usage.forgotten` says how far back
    the ledger holds them, so an allocation set later that needs more loads again.
    """
    written.instances = dict(models.Instance.objects.values_list("path", "pk"))
    for path, share in models.Instance.objects.exclude(share=1.0).values_list("path", "share"):
        policy.set_share(path, share)
    for (kind, path), share in replaced.items():
        if kind == Kind.SHARE:
            policy.set_share(path, share)
    window = policy.settings.usage_window
    rows = models.Allocation.objects.select_related("instance")
    allocations = [
        allocation_of(row) for row in rows if (Kind.ALLOCATION, row.instance.path) not in replaced
    ]
    for (kind, node), before in replaced.items():
        if kind == Kind.ALLOCATION and before is not None:
            allocation = change_of(node, before).allocation()
            if allocation is not None:
                allocations.append(allocation)
    usage = policy.usage
    if not allocations and since is None:
        used = usage_in_window(after=from_ticks(now - window))
        usage.load((to_ticks(u.last), path, u.total) for path, u in used.items())
        usage.forgotten = now  # the totals hold no charge one by one
    else:
        floors = [counts_from(allocation, window, now) for allocation in allocations]
        floors += [now - window + 1, since]
        floor = min(f for f in floors if f is not None)
        usage.load(usage_charges(since=from_ticks(floor)))
        usage.forgotten = floor
    for allocation in allocations:
        policy.put_allocation(allocation)


def _pending() -> QuerySet[models.Input]:
    """The inputs that store a job or a session the leader has not applied yet."""
    return models.Input.objects.filter(kind__in=[Kind.SUBMIT, Kind.CREATE_SESSION])


def _job_rows() -> list[models.Job]:
    return list(
        models.Job.objects.filter(status__in=[m.QUEUED, m.RUNNING])
        .exclude(Exists(_pending().filter(job=OuterRef("pk"))))
        .select_related("backend", "instance")
        .only(*JOB_COLUMNS)
    )


def _sessions(written: Written, job_rows: list[models.Job]) -> dict[int, m.Session]:
    """The sessions that are not closed, and the closed ones whose job still runs."""
    running = [r.session_id for r in job_rows if r.status == m.RUNNING and r.session_id]
    sessions: dict[int, m.Session] = {}
    for row in (
        models.Session.objects.filter(~Q(state=models.Session.State.CLOSED) | Q(pk__in=running))
        .exclude(Exists(_pending().filter(session=OuterRef("pk"))))
        .select_related("backend", "instance")
    ):
        sessions[row.pk] = session_from_row(row)
        written.sessions[row.uid] = (row.pk, row.state, row.accepting_jobs)
    return sessions


def _jobs(
    written: Written, job_rows: list[models.Job], sessions: dict[int, m.Session]
) -> list[m.Job]:
    jobs = []
    applied = _application_order([row.pk for row in job_rows])
    for row in job_rows:
        job = job_from_row(row, sessions.get(row.session_id or 0))
        if row.pk in applied:  # equal submission times break as they did before
            job.seq = applied[row.pk]
            job.key = (job.submitted_at, job.seq)
        jobs.append(job)
        written.jobs[row.uid] = (row.pk, row.status)
    return jobs


def _application_order(pks: list[int], chunk: int = 10_000) -> dict[int, int]:
    """Job pk -> the id of its `job_submitted` event: the order the leader applied the
    submissions in (web processes may create job rows in another order)."""
    order: dict[int, int] = {}
    for i in range(0, len(pks), chunk):
        order.update(
            models.Event.objects.filter(kind="job_submitted", job_id__in=pks[i : i + chunk])
            .values_list("job_id", "id")
            .iterator()
        )
    return order


def _samples(backends: dict[str, int]) -> dict[str, Sample]:
    """Each backend's newest queue sample, to update or follow."""
    names = {pk: name for name, pk in backends.items()}
    latest = models.QueueSample.objects.filter(
        pk__in=models.QueueSample.objects.values("backend").annotate(last=Max("pk")).values("last")
    )
    return {
        names[row.backend_id]: Sample(
            pk=row.pk,
            at=to_ticks(row.at),
            depths=(row.reservation, row.session, row.fair_share),
            entered=[row.entered_reservation, row.entered_session, row.entered_fair_share],
            started=[row.started_reservation, row.started_session, row.started_fair_share],
        )
        for row in latest
    }
