"""`/backends/<name>`: a backend's page, for every signed-in user."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_safe

from scheduler import models
from scheduler.devices.pages import backend_context


@require_safe
@login_required
def backend_detail(request: HttpRequest, name: str) -> HttpResponse:
    """The device behind the backend: coupling map, calibration, queue, next reservation."""
    backend = get_object_or_404(models.Backend, name=name)
    return render(request, "backend.html", backend_context(backend))
