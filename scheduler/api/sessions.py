"""`/sessions`: create, read, close (`accepting_jobs: false`) and cancel."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router

from scheduler import models, services
from scheduler.api.auth import principal, select_instance
from scheduler.api.backends import backend_or_404
from scheduler.api.errors import ApiError, not_found
from scheduler.api.present import session_json
from scheduler.api.schemas import REFUSALS, SessionIn, SessionOut, SessionPatch
from scheduler.submission import sessions_create, warning_text

router = Router(tags=["sessions"])


def session_for_user(request: HttpRequest, uid: str) -> models.Session:
    """The caller's session `uid`; another user's is as unknown as a missing one."""
    session = (
        models.Session.objects.select_related("backend", "instance")
        .filter(uid=uid, owner=principal(request).user)
        .first()
    )
    if session is None:
        raise not_found("Session")
    return session


@router.post("/sessions", response={200: SessionOut} | REFUSALS)
def sessions_post(request: HttpRequest, payload: SessionIn) -> dict[str, Any]:
    """Open a session or batch; it starts with its first job."""
    caller = principal(request)
    node = select_instance(caller.user, payload.instance) if payload.instance else None
    node = node or caller.require_instance()
    backend = backend_or_404(payload.backend)
    session, warnings = sessions_create(
        owner=caller.user,
        backend=backend,
        instance=node,
        mode=payload.mode,
        max_ttl=timedelta(seconds=payload.max_ttl) if payload.max_ttl else None,
    )
    return session_json(session, [warning_text(w) for w in warnings])


@router.get("/sessions/{uid}", response={200: SessionOut} | REFUSALS)
def sessions_get(request: HttpRequest, uid: str) -> dict[str, Any]:
    return session_json(session_for_user(request, uid))


@router.patch("/sessions/{uid}", response={204: None} | REFUSALS)
def sessions_patch(request: HttpRequest, uid: str, payload: SessionPatch) -> HttpResponse:
    """`accepting_jobs: false` closes the session once its queued jobs have run."""
    session = session_for_user(request, uid)
    if payload.accepting_jobs:
        if not session.accepting_jobs:
            raise ApiError(409, "session_closed", "A closed session cannot accept jobs again.")
        return HttpResponse(status=204)
    services.sessions_close(session=session)
    return HttpResponse(status=204)


@router.delete("/sessions/{uid}/close", response={204: None} | REFUSALS)
def sessions_delete(request: HttpRequest, uid: str) -> HttpResponse:
    """Cancel: close at once and cancel the queued jobs; a running job finishes."""
    services.sessions_cancel(session=session_for_user(request, uid))
    return HttpResponse(status=204)
