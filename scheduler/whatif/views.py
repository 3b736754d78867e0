"""The what-if page (operators only): stack changes, run both futures, apply after a
confirmation. The stack lives in the URL (`?c=KIND:ARGS&c=...&hours=H&seed=S`), so a
prediction can be linked to, and the admin's "preview the effect" opens one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import modelform_factory
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from scheduler import models
from scheduler.clock import Clock, SystemClock
from scheduler.whatif import forms as f
from scheduler.whatif.apply import missing_permissions, whatif_apply
from scheduler.whatif.changes import ChangeError, Proposed, parse_all
from scheduler.whatif.report import whatif_run

# The page's time; tests may swap in a FakeClock.
clock: Clock = SystemClock()


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Operators only: anonymous users go to the login page, others get 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied("This page is for operators.")
        return view(request, *args, **kwargs)

    return login_required(wrapper)


def _url(name: str, specs: Sequence[str], scenario: dict[str, Any]) -> str:
    query = urlencode([("c", spec) for spec in specs] + list(scenario.items()))
    return f"{reverse(name)}?{query}" if query else reverse(name)


def _scenario(data: QueryDict) -> f.ScenarioForm:
    """The horizon and seed: the defaults unless the request gives them."""
    if "hours" in data or "seed" in data:
        return f.ScenarioForm(data)
    return f.ScenarioForm({"hours": f.DEFAULT_HOURS, "seed": 0})


def _errors(form: Any) -> str:
    """A form's errors on one line."""
    return "; ".join(
        f"{name}: {' '.join(str(e) for e in errors)}" for name, errors in form.errors.items()
    )


def _stack(data: QueryDict) -> tuple[list[str], list[Proposed], str | None]:
    specs = data.getlist("c")
    try:
        return specs, parse_all(specs, now=clock.now()), None
    except ChangeError as error:
        return specs, [], str(error)


def _add(data: QueryDict, kind: str, specs: list[str]) -> tuple[f.ChangeForm, str | None]:
    """The change a form adds to the stack, or the form with why it cannot."""
    form = f.CHANGE_FORMS[kind](data, prefix=kind)
    if not form.is_valid():
        return form, None
    spec = f.change_spec(form)
    try:
        parse_all([*specs, spec], now=clock.now())
    except ChangeError as refused:
        form.add_error(None, str(refused).split(": ", 1)[-1])
        return form, None
    return form, spec


@require_safe
@staff_required
def what_if(request: HttpRequest) -> HttpResponse:
    """The page: the stacked changes, forms to add one, the horizon, and the results."""
    specs, proposed, error = _stack(request.GET)
    scenario = _scenario(request.GET)
    params = scenario.cleaned_data if scenario.is_valid() else {}
    change_forms = {kind: form(prefix=kind) for kind, form in f.CHANGE_FORMS.items()}
    status = 400 if error or scenario.errors else 200
    if "drop" in request.GET:
        kept = [s for i, s in enumerate(specs) if str(i) != request.GET["drop"]]
        return redirect(_url("what_if", kept, params))
    kind = request.GET.get("add")
    if kind is not None and not error:
        if kind not in f.CHANGE_FORMS:
            return HttpResponseBadRequest(f"unknown change {kind!r}")
        form, spec = _add(request.GET, kind, specs)
        if spec is not None:
            return redirect(_url("what_if", [*specs, spec], params))
        change_forms[kind] = form
        status = 400
    context = {
        "specs": specs,
        "proposed": proposed,
        "error": error,
        "scenario": scenario,
        "params": params,
        "change_forms": change_forms,
        "open_form": kind,
        "run_url": None if error or scenario.errors else _url("what_if_run", specs, params),
        "apply_url": _url("what_if_apply", specs, params),
        "applicable": [p for p in proposed if p.applicable],
    }
    return render(request, "what_if.html", context, status=status)


@require_safe
@staff_required
def what_if_run(request: HttpRequest) -> HttpResponse:
    """Both futures, rendered as the page's results (the page loads this with htmx)."""
    _, proposed, error = _stack(request.GET)
    scenario = _scenario(request.GET)
    if error or not scenario.is_valid():
        message = error or _errors(scenario)
        return render(request, "what_if.html#run-error", {"message": message}, status=400)
    report = whatif_run(
        changes=proposed,
        hours=scenario.cleaned_data["hours"],
        seed=scenario.cleaned_data["seed"],
        now=clock.now(),
    )
    origins = [("known", "known"), ("synthetic", "synthetic")]
    return render(request, "what_if.html#results", {"report": report, "origins": origins})


@require_http_methods(["GET", "HEAD", "POST"])
@staff_required
def what_if_apply(request: HttpRequest) -> HttpResponse:
    """GET: what would be applied, to confirm. POST: apply it through the admin's services."""
    data = request.POST if request.method == "POST" else request.GET
    specs, proposed, error = _stack(data)
    scenario = _scenario(data)
    params = scenario.cleaned_data if scenario.is_valid() else {}
    context = {"specs": specs, "proposed": proposed, "error": error, "params": params}
    if error or not any(p.applicable for p in proposed):
        context["error"] = error or "Nothing to apply: a synthetic load is an assumption."
        return render(request, "what_if_apply.html", context, status=400)
    missing = missing_permissions(user=request.user, changes=proposed)
    if missing:
        raise PermissionDenied(f"Applying these changes needs {', '.join(missing)}.")
    if request.method != "POST":
        return render(request, "what_if_apply.html", context)
    try:
        warnings = whatif_apply(changes=proposed, clock=clock, actor=request.user)
    except ValidationError as refused:
        context["error"] = " ".join(refused.messages)
        return render(request, "what_if_apply.html", context, status=400)
    applied = [p for p in proposed if p.applicable]
    messages.success(request, f"Applied: {'; '.join(p.summary for p in applied)}.")
    for warning in warnings:
        messages.warning(request, warning)
    loads = [p.spec for p in proposed if not p.applicable]
    return redirect(_url("what_if", loads, params))


@require_POST
@staff_required
def what_if_preview(request: HttpRequest) -> HttpResponse:
    """From the admin's reservation form: open the what-if page with that change in it."""
    pk = request.POST.get("whatif_reservation") or None
    row = models.Reservation.objects.filter(pk=pk).first() if pk else None
    if pk and row is None:
        return HttpResponseBadRequest("That reservation no longer exists.")
    fields = ["backend", "instance", "start", "end", "exclusive"]
    if row is not None:  # an edit previews the fields the form sent; a new window needs all
        fields = [
            name
            for name in fields
            if name in request.POST or f"{name}_0" in request.POST or name == "exclusive"
        ]
    if row is not None and row.ended:
        return HttpResponseBadRequest("That reservation has ended; its past stays as it was.")
    if row is not None and row.started:
        fields = [name for name in fields if name in ("end", "exclusive")]
    form_class = modelform_factory(
        models.Reservation,
        form=f.ReservationPreviewForm,
        fields=fields,
        field_classes={name: f.SplitDateTimeField for name in ("start", "end") if name in fields},
    )
    form = form_class(request.POST, instance=row or models.Reservation())
    if not form.is_valid():
        return HttpResponseBadRequest(f"The reservation form is not valid: {_errors(form)}")
    r = form.instance
    spec = f.preview_spec(r, existing=row is not None)
    return redirect(_url("what_if", [spec], {}))
