"""The session activity timeline: each session's spans, closes and jobs, and the windows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from scheduler import models
from scheduler.policy import model as m
from scheduler.selectors.access import User, jobs_visible, pseudonym, shown, visible_instances
from scheduler.selectors.charts import TIMELINE_SPAN


def session_timeline(
    *, since: datetime, now: datetime | None = None, session: str | None = None, user: User
) -> dict[str, Any]:
    """The session activity chart's data since `since` (one session's when `session` is a uid).

    Every session's spans show (they explain why a backend is held); job marks
    only for the jobs `user` may see.

    - spans: each session's open / active / inactive periods, with its mode (dedicated or batch);
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
    history: dict[str, list[tuple[datetime, str, str, str]]] = {}
    for event in rows:
        if event.session is None:
            continue
        state = m.OPEN if event.kind == "session_created" else event.detail.get("state", "")
        history.setdefault(event.session.uid, []).append(
            (event.at, state, event.session.backend.name, event.session.mode)
        )
    spans = []
    closes = []
    for uid, changes in history.items():
        for (at, state, backend, mode), nxt in zip(changes, [*changes[1:], None], strict=True):
            where = {"session": uid, "backend": backend, "mode": mode}
            if state == m.CLOSED:
                if at >= since:
                    closes.append(where | {"at": at})
                continue
            end = nxt[0] if nxt is not None else now
            if end >= since:
                spans.append(where | {"state": state, "start": max(at, since), "end": end})
    reservations = models.Reservation.objects.filter(end__gte=since, start__lte=now + TIMELINE_SPAN)
    if session is not None:
        reservations = reservations.filter(backend__sessions__uid=session)
    return _masked(
        user,
        {
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
        },
    )


def _masked(user: User, timeline: dict[str, Any]) -> dict[str, Any]:
    """Other instances' sessions under stand-in names, their windows without the path,
    for a viewer who does not see them (selectors.access.visible_instances)."""
    visible = visible_instances(user=user)
    if visible is None:
        return timeline
    uids = {item["session"] for item in timeline["spans"] + timeline["closes"]}
    paths = dict(models.Session.objects.filter(uid__in=uids).values_list("uid", "instance__path"))
    for item in timeline["spans"] + timeline["closes"]:
        if not shown(paths.get(item["session"]), visible):
            item["session"] = pseudonym(item["session"])
    for window in timeline["reservations"]:
        if not shown(window["instance"], visible):
            window["instance"] = "another instance"
    return timeline


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
