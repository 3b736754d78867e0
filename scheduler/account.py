"""The user's account page: their instances with the CRNs the client needs, and API keys."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from scheduler import models
from scheduler.api.auth import instance_crn, member_projects
from scheduler.auth_tokens import tokens_issue


@login_required
def account(request: HttpRequest) -> HttpResponse:
    """Instances, API URL and API keys of the logged-in user."""
    base = request.build_absolute_uri("/").rstrip("/")
    assert isinstance(request.user, User)  # login_required
    return render(
        request,
        "account.html",
        {
            "instances": [
                (node.path, instance_crn(node.path)) for node in member_projects(request.user)
            ],
            "tokens": models.ApiToken.objects.filter(user=request.user),
            "api_url": f"{base}/experimental/api/v1",
            "iam_url": base,
        },
    )


@login_required
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    """Issue an API key; its secret is shown once, on the page that follows."""
    name = request.POST.get("name", "").strip()[:100]
    assert isinstance(request.user, User)  # login_required
    _, key = tokens_issue(user=request.user, name=name)
    messages.success(request, f"New API key (copy it now, it is shown only once): {key}")
    return redirect("account")


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete one of the user's API keys; access tokens made from it stop working."""
    get_object_or_404(models.ApiToken, pk=pk, user=request.user).delete()
    messages.info(request, "API key revoked.")
    return redirect("account")
