"""Reads for the browser pages: what the dashboard, job, session and fair-share pages show.

Selectors never write. Scheduling questions (position, estimated start, the
fair-share order) are answered by the rules themselves, from a policy built
with `engine.load()`, never by re-implementing them here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from scheduler import engine, models
from scheduler.clock import from_ticks, maybe_from_ticks, to_ticks
from scheduler.policy import Policy
from scheduler.policy import model as m
from scheduler.policy.estimate import Estimate, estimate
from scheduler.policy.queues import tree_nodes

User = AbstractBaseUser | AnonymousUser
LANES = (m.RESERVATION, m.SESSION, m.FAIR_SHARE)
LANE_LABELS = {m.RESERVATION: "reservation", m.SESSION: "session", m.FAIR_SHARE: "fair-share"}
JOB_FILTERS = ("backend", "instance", "status", "session")
TABLE_ROWS = 50
CHART_POINTS = 200  # maxPoints of every live chart trace
TIMELINE_SPAN = timedelta(minutes=30)  # history the dashboard charts show
FLOW_BIN = timedelta(minutes=1)  # the queue-flow chart counts arrivals and starts per bin


# ------------------------------------------------------------------- access
def jobs_visible(*, user: User) -> QuerySet[models.Job]:
    """Every job for staff; a researcher's own jobs and those of their instances."""
    jobs = models.Job.objects.select_related("backend", "instance", "session")
    if getattr(user, "is_staff", False):
        return jobs
    return jobs.filter(Q(owner_id=user.pk) | Q(instance__members=user.pk)).distinct()


def sessions_visible(*, user: User) -> QuerySet[models.Session]:
    sessions = models.Session.objects.select_related("backend", "instance", "owner")
    if getattr(user, "is_staff", False):
        return sessions
    return sessions.filter(Q(owner_id=user.pk) | Q(instance__members=user.pk)).distinct()


def instances_of(*, user: User) -> QuerySet[models.Instance]:
    """The project instances a user may submit in."""
    return models.Instance.objects.filter(members=user.pk).distinct()


def sessions_joinable(*, user: User) -> QuerySet[models.Session]:
    """A user's own sessions that still accept jobs, newest first."""
    return (
        models.Session.objects.filter(owner_id=user.pk, accepting_jobs=True)
        .exclude(state=m.CLOSED)
        .select_related("backend", "instance")
    )


def jobs_table(*, user: User, filters: Mapping[str, str]) -> list[models.Job]:
    """The newest visible jobs, narrowed by the table's filters (empty = any)."""
    jobs = jobs_visible(user=user)
    if value := filters.get("backend"):
        jobs = jobs.filter(backend__name=value)
    if value := filters.get("instance"):
        jobs = jobs.filter(instance__path=value)
    if value := filters.get("status"):
        jobs = jobs.filter(status=value)
    if value := filters.get("session"):
        jobs = jobs.filter(session__uid=value)
    return list(jobs[:TABLE_ROWS])


def job_filter_choices(*, user: User) -> dict[str, list[str]]:
    visible = jobs_visible(user=user)
    return {
        "backend": list(models.Backend.objects.values_list("name", flat=True)),
        "instance": list(
            models.Instance.objects.filter(pk__in=visible.order_by().values("instance_id"))
            .order_by("path")
            .values_list("path", flat=True)
        ),
        "status": list(models.Job.Status.values),
    }


# ------------------------------------------------------------------- policy
def policy_now(now: datetime | None = None) -> tuple[Policy, int]:
    """The live scheduling state, as the engine would load it at `now`."""
    ticks = to_ticks(now or timezone.now())
    return engine.load(engine.policy_settings(), ticks).policy, ticks


def estimates(policy: Policy, now: int) -> dict[str, Estimate]:
    return estimate(policy, now)


# ----------------------------------------------------------------- backends
@dataclass(frozen=True)
class LaneRule:
    """The lane the cards and charts count a job in: the one it started from; if it
    has not started, the one it waits in now: its instance's reservation window,
    else the backend's active session, else fair share."""

    session_id: int | None = None  # the backend's active session
    reservation_instance_id: int | None = None  # the instance whose window is open now

    def __call__(self, lane: str | None, session_id: int | None, instance_id: int) -> str:
        if lane:
            return lane
        if instance_id == self.reservation_instance_id:
            return m.RESERVATION
        if session_id is not None and session_id == self.session_id:
            return m.SESSION
        return m.FAIR_SHARE


@dataclass
class BackendCard:
    backend: models.Backend
    running: models.Job | None
    session: models.Session | None  # the active session
    reservation: models.Reservation | None  # in its window now
    held: bool
    depth: dict[str, int]  # queued jobs per lane they wait in

    @property
    def total(self) -> int:
        return sum(self.depth.values())

    @property
    def lanes(self) -> list[tuple[str, str, int]]:
        return [(lane, LANE_LABELS[lane], self.depth[lane]) for lane in LANES]

    @property
    def lane_rule(self) -> LaneRule:
        return LaneRule(
            self.session.pk if self.session else None,
            self.reservation.instance_id if self.reservation else None,
        )


def backend_cards(*, names: Iterable[str] | None = None) -> list[BackendCard]:
    """One card per backend: what runs, the active session, the reservation, the queue."""
    now = timezone.now()
    backends = models.Backend.objects.all()
    if names is not None:
        backends = backends.filter(name__in=list(names))
    running = {
        j.backend_id: j
        for j in models.Job.objects.filter(status=m.RUNNING).select_related("instance", "session")
    }
    active = {
        s.backend_id: s
        for s in models.Session.objects.filter(state=m.ACTIVE).select_related("instance", "owner")
    }
    windows = {
        r.backend_id: r
        for r in models.Reservation.objects.filter(start__lte=now, end__gt=now).select_related(
            "instance"
        )
    }
    cards = {
        backend.pk: BackendCard(
            backend,
            running.get(backend.pk),
            active.get(backend.pk),
            windows.get(backend.pk),
            backend.hold_session_id is not None,
            dict.fromkeys(LANES, 0),
        )
        for backend in backends
    }
    # The queue per lane: one grouped count, each group put in its lane by the card's rule.
    queued = (
        models.Job.objects.filter(status=m.QUEUED, backend_id__in=list(cards))
        .order_by()
        .values_list("backend_id", "session_id", "instance_id")
        .annotate(n=Count("id"))
    )
    for backend_id, session_id, instance_id, n in queued:
        card = cards[backend_id]
        card.depth[card.lane_rule(None, session_id, instance_id)] += n
    return list(cards.values())


def queue_flow(
    *, backend: models.Backend, since: datetime, now: datetime | None = None, lanes: LaneRule
) -> dict[str, Any]:
    """A backend's queue over time, replayed from the event log since `since`.

    - depth: queued jobs per lane after every submission and start (a step
      series up to now, at most CHART_POINTS points);
    - flow: per minute (FLOW_BIN), the jobs that entered each lane and the
      jobs that started from it.

    Jobs count in the lane `lanes` gives them.
    """
    now = max(now or timezone.now(), since)
    first_bin = flow_bin(since)
    bins = int((flow_bin(now) - first_bin) / FLOW_BIN) + 1
    entered = {lane: [0] * bins for lane in LANES}
    started = {lane: [0] * bins for lane in LANES}
    events = list(
        models.Event.objects.filter(
            backend=backend,
            at__gte=since,
            kind__in=("job_submitted", "job_started", "job_ended"),
        )
        .select_related("job")
        .only(  # not the job's inputs or results
            "kind",
            "at",
            "job__lane",
            "job__session_id",
            "job__instance_id",
            "job__submitted_at",
            "job__started_at",
        )
        .order_by("id")
    )
    # Queued at `since`: still queued now, or started (or left unstarted) after it.
    at_start = models.Job.objects.filter(backend=backend, status=m.QUEUED, submitted_at__lt=since)
    columns = ("pk", "lane", "session_id", "instance_id")
    waiting = {pk: lanes(*job) for pk, *job in at_start.order_by().values_list(*columns)}
    for event in events:
        job = event.job
        if job is None or job.submitted_at >= since or event.kind == "job_submitted":
            continue
        if event.kind == "job_started" or job.started_at is None:
            waiting.setdefault(job.pk, lanes(job.lane, job.session_id, job.instance_id))
    depth = dict.fromkeys(LANES, 0)
    for lane in waiting.values():
        depth[lane] += 1
    series: dict[str, list[Any]] = {"x": [since.isoformat()], **{k: [v] for k, v in depth.items()}}
    for event in events:
        job = event.job
        if job is None:
            continue
        lane = lanes(job.lane, job.session_id, job.instance_id)
        at_bin = min(int((event.at - first_bin) / FLOW_BIN), bins - 1)
        if event.kind == "job_submitted":
            depth[lane] += 1
            waiting[job.pk] = lane
            entered[lane][at_bin] += 1
        elif job.pk in waiting:
            depth[lane] = max(0, depth[lane] - 1)
            del waiting[job.pk]
            if event.kind == "job_started":
                started[lane][at_bin] += 1
        else:
            continue
        series["x"].append(event.at.isoformat())
        for name in LANES:
            series[name].append(depth[name])
    series["x"].append(now.isoformat())  # the chart runs up to now
    for name in LANES:
        series[name].append(depth[name])
    return {
        "depth": {name: values[-CHART_POINTS:] for name, values in series.items()},
        "flow": {
            "bins": [(first_bin + n * FLOW_BIN).isoformat() for n in range(bins)],
            "entered": entered,
            "started": started,
        },
    }


def flow_bin(at: datetime) -> datetime:
    """The start of the FLOW_BIN-long bin holding `at`."""
    step = FLOW_BIN.total_seconds()
    return datetime.fromtimestamp(at.timestamp() // step * step, tz=at.tzinfo)


def flow_now(*, cards: Iterable[BackendCard], now: datetime | None = None) -> dict[str, Any]:
    """Per backend of `cards`, the bin of `queue_flow`'s flow holding `now`: the jobs
    that entered and started each lane in it (by the card's lane rule).

    Two queries for all the backends, each walking only the bin's jobs (by the
    `submitted_at` and (backend, started_at) indexes).
    """
    start = flow_bin(now or timezone.now())
    end = start + FLOW_BIN
    by_pk = {card.backend.pk: card for card in cards}
    flows: dict[str, Any] = {
        card.backend.name: {"bin": start.isoformat()}
        | {kind: dict.fromkeys(LANES, 0) for kind in ("entered", "started")}
        for card in by_pk.values()
    }
    jobs = models.Job.objects.order_by()
    started = jobs.filter(backend_id__in=list(by_pk), started_at__gte=start, started_at__lt=end)
    columns = ("backend_id", "lane", "session_id", "instance_id")
    for kind, rows in (
        ("entered", jobs.filter(submitted_at__gte=start, submitted_at__lt=end)),
        ("started", started),
    ):
        for backend_id, *job in rows.values_list(*columns):
            card = by_pk.get(backend_id)
            if card is not None:
                flows[card.backend.name][kind][card.lane_rule(*job)] += 1
    return flows


# ----------------------------------------------------------------- sessions
@dataclass
class Span:
    session: str
    state: str
    start: datetime
    end: datetime


def session_timeline(
    *, since: datetime, now: datetime | None = None, session: str | None = None, user: User
) -> dict[str, Any]:
    """The session activity chart's data since `since` (one session's when `session` is a uid).

    Every session's spans show (they explain why a backend is held); job marks
    only for the jobs `user` may see.

    - spans: each session's open / active / inactive periods;
    - closes: when a session closed;
    - jobs: the sessions' jobs, marked where they started (or were submitted, if waiting);
    - reservations: windows overlapping the chart, as background bands.
    """
    now = now or timezone.now()
    rows = models.Event.objects.filter(kind__in=("session_created", "session_state"))
    if session is not None:
        rows = rows.filter(session__uid=session)
    rows = (
        rows.filter(Q(at__gte=since) | Q(session__state__in=[m.OPEN, m.ACTIVE, m.INACTIVE]))
        .select_related("session__backend")
        .order_by("id")
    )
    history: dict[str, list[tuple[datetime, str, str]]] = {}
    for event in rows:
        if event.session is None:
            continue
        state = m.OPEN if event.kind == "session_created" else event.detail.get("state", "")
        history.setdefault(event.session.uid, []).append(
            (event.at, state, event.session.backend.name)
        )
    spans = []
    closes = []
    for uid, changes in history.items():
        for (at, state, backend), nxt in zip(changes, [*changes[1:], None], strict=True):
            if state == m.CLOSED:
                if at >= since:
                    closes.append({"session": uid, "backend": backend, "at": at})
                continue
            end = nxt[0] if nxt is not None else now
            if end >= since:
                spans.append(
                    {"session": uid, "backend": backend, "state": state, "start": max(at, since)}
                    | {"end": end}
                )
    reservations = models.Reservation.objects.filter(end__gte=since, start__lte=now + TIMELINE_SPAN)
    if session is not None:
        reservations = reservations.filter(backend__sessions__uid=session)
    return {
        "spans": spans,
        "closes": closes,
        "jobs": _session_jobs(sessions=list(history), since=since, user=user),
        "reservations": [
            {
                "backend": r.backend.name,
                "instance": r.instance.path,
                "start": r.start,
                "end": r.end,
                "exclusive": r.exclusive,
            }
            for r in reservations.select_related("backend", "instance").order_by("start")
        ],
    }


TIMELINE_JOBS = 500  # job marks on the session activity chart, newest first


def _session_jobs(*, sessions: list[str], since: datetime, user: User) -> list[dict[str, Any]]:
    """The jobs of `sessions` that `user` may see and that started, or were submitted, since."""
    if not sessions:
        return []
    jobs = (
        jobs_visible(user=user)
        .filter(session__uid__in=sessions)
        .filter(
            Q(submitted_at__gte=since)
            | Q(started_at__gte=since)
            | Q(started_at__isnull=True, status=m.QUEUED)
        )
        .order_by("-submitted_at")
        .values_list(
            "uid", "session__uid", "backend__name", "status", "submitted_at", "started_at"
        )[:TIMELINE_JOBS]
    )
    return [
        {
            "job": uid,
            "session": session,
            "backend": backend,
            "status": status,
            "at": max(started or submitted, since),
            "started": started is not None,
        }
        for uid, session, backend, status, submitted, started in jobs
    ]


def session_events(*, session: models.Session) -> list[models.Event]:
    return list(session.events.select_related("job").order_by("id")[:500])


# --------------------------------------------------------------------- jobs
@dataclass(frozen=True)
class WaitReason:
    """One plain-language reason a job waits; `until` is shown in the viewer's time zone."""

    text: str
    until: datetime | None = None
    why: str = ""  # what the deadline is, e.g. "interactive timeout"


def job_wait_reason(
    job: models.Job,
    policy: Policy,
    now: int | None = None,
    found: Mapping[str, Estimate] | None = None,
) -> list[WaitReason]:
    """Why a queued job has not started yet, in the words of the rules.

    `found`: the estimates of `policy` at `now`, when the caller has them already.
    """
    live = policy.jobs.get(job.uid)
    if job.status != m.QUEUED or live is None:
        return []
    backend = policy.backends[live.backend]
    reasons = []
    if backend.status != m.ONLINE:
        reasons.append(WaitReason(f"backend {backend.name} is paused by an operator"))
    if backend.running is not None:
        running = backend.running
        reasons.append(
            WaitReason(
                f"backend {backend.name} runs job {_short(running.id)} "
                f"({LANE_LABELS.get(running.lane or '', running.lane)} lane)"
            )
        )
    reservation = backend.reservation
    if reservation is not None and reservation.instance != live.instance:
        kind = "exclusive reservation" if reservation.exclusive else "reservation"
        reasons.append(
            WaitReason(f"{kind} of {reservation.instance}", from_ticks(reservation.end), "")
        )
    session = live.session
    active = backend.active_session
    if session is not None and session is active:
        ahead = sum(1 for j in session.queue if j.status == m.QUEUED and j.key < live.key)
        reasons.append(WaitReason(f"{_jobs(ahead)} of its session ahead in the session lane"))
        return reasons
    if active is not None:
        if active.queued_count:
            reasons.append(
                WaitReason(
                    f"session {_short(active.id)} of {active.instance} has "
                    f"{_jobs(active.queued_count)} queued in the session lane"
                )
            )
        elif active.accepting_jobs:
            reasons.append(
                WaitReason(
                    f"backend held by session {_short(active.id)} of {active.instance}",
                    maybe_from_ticks(active.interactive_deadline),
                    "interactive timeout",
                )
            )
    if session is not None and session.state in m.WAITING_STATES:
        reasons.append(
            WaitReason(
                f"its session {_short(session.id)} is {session.state}: waits in the fair-share lane"
            )
        )
    if found is None:
        found = estimate(policy, now if now is not None else (policy.now or 0))
    ahead = _fair_share_ahead(policy, live, found)
    if ahead:
        reasons.append(WaitReason(f"{_jobs(ahead)} ahead in the fair-share lane"))
    return reasons


def _fair_share_ahead(policy: Policy, job: m.Job, found: Mapping[str, Estimate]) -> int:
    """Queued fair-share jobs of the backend the rules would start before `job`."""
    mine = found.get(job.id)
    if mine is None or mine.position is None:
        return 0
    active = policy.backends[job.backend].active_session
    return sum(
        1
        for uid, other in found.items()
        if other.position is not None
        and other.position < mine.position
        and policy.jobs[uid].backend == job.backend
        and (active is None or policy.jobs[uid].session is not active)
    )


def _jobs(count: int) -> str:
    return f"{count} job" if count == 1 else f"{count} jobs"


def _short(uid: str) -> str:
    return uid[:6] + "…" if len(uid) > 8 else uid


def job_result_chart(job: models.Job) -> dict[str, Any] | None:
    """Chart data of a completed job: counts per bitstring, or expectation values ± std."""
    if not job.result:
        return None
    from qiskit_ibm_runtime import RuntimeDecoder

    text = job.result if isinstance(job.result, str) else json.dumps(job.result)
    result = json.loads(text, cls=RuntimeDecoder)
    if job.program_id == "estimator":
        pubs = []
        for index, pub in enumerate(result):
            evs = _flat(pub.data.evs)
            stds = _flat(getattr(pub.data, "stds", [0] * len(evs)))
            pubs.append({"pub": index, "evs": evs, "stds": stds})
        return {"kind": "estimator", "pubs": pubs}
    pubs = []
    for index, pub in enumerate(result):
        for name in sorted(pub.data.keys()):
            counts = getattr(pub.data, name).get_counts()
            keys = sorted(counts)
            pubs.append({"pub": index, "register": name, "x": keys, "y": [counts[k] for k in keys]})
    return {"kind": "sampler", "pubs": pubs}


def _flat(values: Any) -> list[float]:
    try:
        return [float(v) for v in values.ravel()]
    except AttributeError:
        return [float(values)]


# --------------------------------------------------------------- fair-share
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


def fair_share_tree(*, now: datetime | None = None) -> list[TreeRow]:
    """Every instance-tree node with its share, usage in the window and usage/share."""
    now = now or timezone.now()
    window = timedelta(seconds=engine.policy_settings().usage_window / 1_000_000)
    usage: dict[str, int] = {}
    for path, total in (
        models.UsageCharge.objects.filter(ended_at__gt=now - window)
        .values_list("instance__path")
        .annotate(total=Sum("microseconds"))
    ):
        for ancestor in tree_nodes(path):
            usage[ancestor] = usage.get(ancestor, 0) + total
    queued = dict(
        models.Job.objects.filter(status=m.QUEUED)
        .values_list("instance__path")
        .annotate(n=Count("id"))
    )
    rows = []
    for node in models.Instance.objects.order_by("path"):
        seconds = usage.get(node.path, 0) / 1_000_000
        ratio = seconds / node.share if node.share > 0 else None
        count = sum(n for path, n in queued.items() if path == node.path or _under(path, node))
        rows.append(
            TreeRow(node.path, node.level, node.share, seconds, ratio, node.path.count("/"))
        )
        rows[-1].queued = count
    return rows


def _under(path: str, node: models.Instance) -> bool:
    return path.startswith(node.path + "/")


def fair_share_order(policy: Policy, now: int, *, limit: int = 10) -> dict[str, list[Any]]:
    """Per backend, the queued jobs in the order the rules would start them (an estimate)."""
    found = estimate(policy, now)
    order: dict[str, list[Any]] = {name: [] for name in sorted(policy.backends)}
    ranked = sorted((e.position, uid) for uid, e in found.items() if e.position is not None)
    for _, uid in ranked:
        job = policy.jobs[uid]
        rows = order[job.backend]
        if len(rows) < limit:
            rows.append(
                {
                    "uid": uid,
                    "instance": job.instance,
                    "session": job.session_id,
                    "position": found[uid].position,
                    "start": maybe_from_ticks(found[uid].start),
                }
            )
    return order
