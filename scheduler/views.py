"""Browser pages. Reads come from `selectors` (via `fragments`), writes go through `services`.

Each page is one template; an htmx request gets the page's own partial
(`page.html#name`), and the live websocket pushes the same partials.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_guid import get_guid
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from qdash.lean import API_PREFIXES
from scheduler import circuits, fragments, models, selectors, services
from scheduler.forms import SubmitForm
from scheduler.submission import SubmissionError, jobs_submit, warning_text
from scheduler.whatif.views import staff_required


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def server_error(request: HttpRequest) -> HttpResponse:
    """A 500 that shows no traceback: the request id, which the log has with the rest."""
    request_id = get_guid()
    if request.path.startswith(API_PREFIXES):
        body = {
            "code": "server_error",
            "message": f"An unexpected error on the server; its request id is {request_id}.",
            "request_id": request_id,
        }
        return JsonResponse(body, status=500)
    return render(request, "500.html", {"request_id": request_id}, status=500)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A 404 that names no URL pattern; JSON under the API's prefixes."""
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"code": "not_found", "message": "Not found."}, status=404)
    return render(request, "404.html", status=404)


@require_safe
@cache_control(max_age=86_400, public=True)
def favicon(request: HttpRequest) -> FileResponse:
    """`/favicon.ico`, which browsers ask for on pages that name no icon (the admin's)."""
    path = finders.find("favicon.svg")
    assert isinstance(path, str)
    return FileResponse(open(path, "rb"), content_type="image/svg+xml")  # noqa: SIM115


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness probe for load balancers and process managers."""
    return JsonResponse({"status": "ok"})


def _filters(request: HttpRequest) -> dict[str, str]:
    return {key: request.GET.get(key, "").strip() for key in selectors.JOB_FILTERS}


@require_safe
@login_required
def dashboard(request: HtmxHttpRequest) -> HttpResponse:
    """Backend cards, queue-depth charts, the session timeline and the job table."""
    filters = _filters(request)
    if request.htmx:
        jobs = selectors.jobs_table(user=request.user, filters=filters)
        return render(request, "dashboard.html#job-table", {"jobs": jobs})
    context = fragments.dashboard_context(user=request.user, filters=filters)
    return render(request, "dashboard.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
@login_required
def submit(request: HtmxHttpRequest) -> HttpResponse:
    """The submission form; a refusal re-renders it with the error next to its field."""
    form = SubmitForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            submitted = jobs_submit(owner=request.user, **vars(form.job_request()))
        except SubmissionError as error:
            form.add_refusal(error.code, error.message)
        else:
            for note in form.notes:  # e.g. what transpiling for the device made of it
                messages.info(request, note)
            for warning in submitted.warnings:
                messages.warning(request, warning_text(warning))
            url = reverse("job", args=[submitted.job.uid])
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    template = "submit.html#submit-form" if request.htmx else "submit.html"
    return render(request, template, {"form": form, "examples": circuits.EXAMPLES})


def _job_for_user(request: HttpRequest, uid: str) -> models.Job:
    return get_object_or_404(selectors.jobs_visible(user=request.user), uid=uid)


@require_safe
@login_required
def job_detail(request: HttpRequest, uid: str) -> HttpResponse:
    job = _job_for_user(request, uid)
    return render(request, "job.html", fragments.job_context(job, user=request.user))


def _download(response: HttpResponse, filename: str) -> HttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _unavailable(error: selectors.ResultUnavailable) -> JsonResponse:
    return JsonResponse({"code": error.code, "message": error.message}, status=error.status)


@require_safe
@login_required
def job_result(request: HttpRequest, uid: str) -> HttpResponse:
    """The result as the client's own JSON: the text `/jobs/{id}/results` gives it."""
    job = _job_for_user(request, uid)
    try:
        text = selectors.result_text(job)
    except selectors.ResultUnavailable as error:
        return _unavailable(error)
    response = HttpResponse(text, content_type="application/json")
    return _download(response, f"qdash-{job.uid}-result.json")


@require_safe
@login_required
def job_bitstrings(request: HttpRequest, uid: str) -> HttpResponse:
    """A sampler result's bitstrings, every shot, per PUB and classical register."""
    job = _job_for_user(request, uid)
    try:
        data = selectors.job_bitstrings(job)
    except selectors.ResultUnavailable as error:
        return _unavailable(error)
    return _download(JsonResponse(data), f"qdash-{job.uid}-bitstrings.json")


def _session_for_user(request: HttpRequest, uid: str) -> models.Session:
    return get_object_or_404(selectors.sessions_visible(user=request.user), uid=uid)


@require_safe
@login_required
def session_detail(request: HttpRequest, uid: str) -> HttpResponse:
    session = _session_for_user(request, uid)
    return render(request, "session.html", fragments.session_context(session, request.user))


@require_POST
@login_required
def session_action(request: HtmxHttpRequest, uid: str, action: str) -> HttpResponse:
    """Close (stop accepting jobs) or cancel a session: its owner or staff only."""
    session = _session_for_user(request, uid)
    if not fragments.session_may_manage(session, request.user):
        raise PermissionDenied("Only the session's owner can close or cancel it.")
    if action == "close":
        session = services.sessions_close(session=session, actor=request.user)
    else:
        session = services.sessions_cancel(session=session, actor=request.user)
    if request.htmx:
        context = fragments.session_context(session, request.user)
        return render(request, "session.html#session-status", context)
    return redirect("session", uid=uid)


@require_safe
@login_required
def fair_share(request: HttpRequest) -> HttpResponse:
    """The instance tree with shares and usage, and what each backend starts next."""
    return render(request, "fair_share.html", fragments.fair_share_context(user=request.user))


@require_safe
@staff_required
def cluster(request: HtmxHttpRequest) -> HttpResponse:
    """Operators: every process of the deployment, its last heartbeat and what it does.

    The page polls itself every 2 s; an htmx request gets the tables only.
    """
    context = {"cluster": selectors.cluster_processes()}
    template = "cluster.html#cluster-body" if request.htmx else "cluster.html"
    return render(request, template, context)
