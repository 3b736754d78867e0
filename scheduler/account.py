"""The user's account page: their instances with the CRNs the client needs and the time
their allocations leave them, API keys, and a notebook snippet that connects the client
with them."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from scheduler import models
from scheduler.api.auth import instance_crn, member_projects
from scheduler.auth_tokens import tokens_issue
from scheduler.selectors.allocations import binding, instance_allocations


class UnknownInstance(Exception):
    """The request named an instance the user is not a member of."""


def _chosen(request: HttpRequest, projects: list[models.Instance]) -> models.Instance | None:
    """The instance the snippet is for: the one the request names, else the first."""
    wanted = (request.POST if request.method == "POST" else request.GET).get("instance", "")
    chosen = next((node for node in projects if node.path == wanted), None)
    if wanted and chosen is None:
        raise UnknownInstance(wanted)
    return chosen or (projects[0] if projects else None)


def _context(request: HttpRequest, *, new_key: str | None = None) -> dict[str, Any]:
    """The page's context: instances, keys and the snippet for the chosen instance."""
    assert isinstance(request.user, User)  # login_required
    base = request.build_absolute_uri("/").rstrip("/")
    projects = member_projects(request.user)
    chosen = _chosen(request, projects)
    backend = models.Backend.objects.filter(status=models.Backend.Status.ONLINE).first()
    return {
        "instances": [(node.path, instance_crn(node.path)) for node in projects],
        # each instance with the allocation that limits it (docs/rules.md, "Allocations")
        "instance_rows": [
            (node.path, instance_crn(node.path), binding(instance_allocations(node.path)))
            for node in projects
        ],
        "tokens": models.ApiToken.objects.filter(user=request.user),
        "api_url": f"{base}/experimental/api/v1",
        "iam_url": base,
        "chosen": chosen.path if chosen else "",
        "crn": instance_crn(chosen.path) if chosen else "",
        "backend": backend.name if backend else "",
        "new_key": new_key,
    }


def _unknown(error: UnknownInstance) -> HttpResponse:
    return HttpResponseBadRequest(
        f"{error} is not one of your instances.", content_type="text/plain; charset=utf-8"
    )


def _page(request: HttpRequest, **context: Any) -> HttpResponse:
    try:
        values = _context(request, **context)
    except UnknownInstance as error:
        return _unknown(error)
    if getattr(request, "htmx", False):
        # The snippet, and the key list beside it (swapped out of band).
        html = render_to_string("account.html#notebook", values, request=request)
        html += render_to_string("account.html#api-keys", {**values, "oob": True}, request)
        return HttpResponse(html)
    return render(request, "account.html", values)


@require_safe
@login_required
def account(request: HttpRequest) -> HttpResponse:
    """Instances, API URL, API keys and the notebook snippet of the logged-in user."""
    return _page(request)


@never_cache
@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    """Issue an API key; its secret is shown once, in this answer only (and in the
    snippet), never stored where a later page could show it again."""
    name = request.POST.get("name", "").strip()[:100]
    assert isinstance(request.user, User)  # login_required
    try:
        _chosen(request, member_projects(request.user))
    except UnknownInstance as error:
        return _unknown(error)
    _, key = tokens_issue(user=request.user, name=name)
    return _page(request, new_key=key)


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete one of the user's API keys; access tokens made from it stop working."""
    get_object_or_404(models.ApiToken, pk=pk, user=request.user).delete()
    messages.info(request, "API key revoked.")
    return redirect("account")
