"""Page contexts and the HTML fragments the live websocket pushes.

Views render whole pages from these contexts; the dashboard consumer renders
the same templates' partials (`page.html#name`), so a fragment pushed live is
exactly what a reload would show.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.template.loader import render_to_string
from django.utils import timezone

from scheduler import models, plans, selectors
from scheduler.clock import from_ticks
from scheduler.selectors.allocations import allocation_bars


def dashboard_context(*, user: Any, filters: Mapping[str, str]) -> dict[str, Any]:
    """Everything the dashboard shows."""
    cards = selectors.backend_cards()
    return {
        "cards": cards,
        "visible": selectors.visible_instances(user=user),
        "jobs": selectors.jobs_table(user=user, filters=filters),
        "filters": filters,
        "choices": selectors.job_filter_choices(user=user),
        "charts": charts(cards=cards, user=user),
    }


def charts(*, cards: Iterable[selectors.BackendCard], user: Any) -> dict[str, Any]:
    """Full data of the dashboard's charts: queue flow per backend and the session timeline."""
    now = timezone.now()
    since = now - selectors.TIMELINE_SPAN
    return {
        "type": "charts",
        "flow": {
            card.backend.name: selectors.queue_flow(backend=card.backend, since=since, now=now)
            for card in cards
        },
        "timeline": selectors.session_timeline(since=since, now=now, user=user),
        "maxPoints": selectors.CHART_POINTS,
        "span": selectors.TIMELINE_SPAN.total_seconds(),
        "bin": selectors.FLOW_BIN.total_seconds(),
    }


def job_context(job: models.Job, *, user: Any) -> dict[str, Any]:
    """A job with, while queued, its place in the published plan and why it waits;
    when completed, its results."""
    visible = selectors.visible_instances(user=user)
    context: dict[str, Any] = {"job": job, "waiting": selectors.job_waiting(job, visible=visible)}
    context["results"] = selectors.job_results(job)
    return context


def session_context(session: models.Session, user: Any) -> dict[str, Any]:
    timeline = selectors.session_timeline(
        since=session.created_at - timedelta(seconds=1), session=session.uid, user=user
    )
    return {
        "session": session,
        "jobs": list(session.jobs.select_related("backend", "instance").order_by("submitted_at")),
        "events": selectors.session_events(session=session),
        "timeline": timeline,
        "can_manage": session_may_manage(session, user),
    }


def session_may_manage(session: models.Session, user: Any) -> bool:
    """Its owner (or staff) may close or cancel a session that is not closed."""
    live = session.state != models.Session.State.CLOSED
    return live and (bool(user.is_staff) or session.owner_id == user.pk)


def fair_share_context(*, user: Any) -> dict[str, Any]:
    plan = plans.current()
    visible = selectors.visible_instances(user=user)
    return {
        "tree": selectors.fair_share_tree(visible=visible),
        "allocations": allocation_bars(visible=visible),
        "order": selectors.fair_share_next(plan, visible=visible),
        "plan": plan,
    }


# ------------------------------------------------------------- live fragments
def dashboard_fragments(
    *, user: Any, filters: Mapping[str, str], backends: Iterable[str] | None, jobs: bool
) -> list[str]:
    """Cards of the named backends (all when None) and, if jobs changed, the job table."""
    visible = selectors.visible_instances(user=user)
    html: list[str] = [
        render_to_string("dashboard.html#backend-card", {"card": card, "visible": visible})
        for card in selectors.backend_cards(names=backends)
    ]
    if jobs:
        rows = selectors.jobs_table(user=user, filters=filters)
        html.append(render_to_string("dashboard.html#job-table", {"jobs": rows}))
    return html


def depth_points(*, backends: Iterable[str], at: int | None) -> str:
    """Each backend's queue depth per lane now (for `Plotly.extendTraces`) and the
    current bin of its queue flow (for `Plotly.restyle`)."""
    moment = from_ticks(at) if at is not None else timezone.now()
    cards = selectors.backend_cards(names=backends)
    flows = selectors.flow_now(cards=cards, now=moment)
    points = {
        card.backend.name: {"at": moment, **card.depth, "flow": flows[card.backend.name]}
        for card in cards
    }
    return to_json({"type": "depth", "points": points})


def timeline_message(*, user: Any) -> str:
    now = timezone.now()
    timeline = selectors.session_timeline(since=now - selectors.TIMELINE_SPAN, now=now, user=user)
    return to_json({"type": "timeline", "timeline": timeline})


def job_fragment(*, uid: str, user: Any, queued: bool = False) -> str | None:
    """The job page's status; with `queued`, only while the job is queued."""
    jobs = selectors.jobs_visible(user=user).filter(uid=uid)
    if queued:
        jobs = jobs.filter(status=models.Job.Status.QUEUED)
    job = jobs.first()
    if job is None:
        return None
    context = job_context(job, user=user)
    return render_to_string("job.html#job-status", context) + render_to_string(
        "job.html#job-results", context
    )


def session_fragments(*, uid: str, user: Any) -> list[str]:
    session = selectors.sessions_visible(user=user).filter(uid=uid).first()
    if session is None:
        return []
    context = session_context(session, user)
    return [
        render_to_string("session.html#session-status", context),
        render_to_string("session.html#session-jobs", context),
    ]


def fair_share_fragment(*, user: Any) -> str:
    return render_to_string("fair_share.html#fair-share-body", fair_share_context(user=user))


def to_json(data: Any) -> str:
    return json.dumps(data, cls=DjangoJSONEncoder)
