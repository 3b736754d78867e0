"""Forms of the what-if page: the horizon, and one small form per kind of change.

A change form only checks its fields and writes the change's text
(`changes.parse` then checks it against the database and the other changes),
so the page, the URL and `manage.py whatif` share one syntax.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.utils import timezone

from scheduler import models
from scheduler.policy import model as m
from scheduler.whatif.changes import MAX_OVERHEAD, MAX_PER_HOUR
from scheduler.whatif.report import MAX_HOURS

DEFAULT_HOURS = 4.0


class ScenarioForm(forms.Form):
    """How far both futures run, and the seed of the synthetic load."""

    hours = forms.FloatField(min_value=0.25, max_value=MAX_HOURS, initial=DEFAULT_HOURS)
    seed = forms.IntegerField(min_value=0, max_value=2**31, initial=0)


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, datetime):
            return timezone.localtime(value).strftime("%Y-%m-%dT%H:%M")
        return super().format_value(value)


def _iso(moment: datetime) -> str:
    return timezone.localtime(moment).isoformat(timespec="seconds")


def _backends() -> forms.ModelChoiceField:
    return forms.ModelChoiceField(models.Backend.objects.all(), to_field_name="name")


def _projects() -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        models.Instance.objects.filter(path__regex=r"^[^/]+/[^/]+/[^/]+$"), to_field_name="path"
    )


def _reservations() -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        models.Reservation.objects.filter(ended=False).select_related("backend", "instance")
    )


class ChangeForm(forms.Form):
    """A form that writes one change's text (`KIND:ARGS`)."""

    kind = ""
    title = ""

    def text(self) -> str:
        raise NotImplementedError


class ReservationChangeForm(ChangeForm):
    kind, title = "reservation", "Add a reservation"
    backend = _backends()
    instance = _projects()
    start = forms.DateTimeField(widget=DateTimeInput)
    end = forms.DateTimeField(widget=DateTimeInput)
    exclusive = forms.BooleanField(required=False)

    def text(self) -> str:
        d = self.cleaned_data
        flag = ",exclusive" if d["exclusive"] else ""
        return f"{d['backend'].name},{d['instance'].path},{_iso(d['start'])},{_iso(d['end'])}{flag}"


class MoveChangeForm(ChangeForm):
    kind, title = "move", "Move a reservation"
    reservation = _reservations()
    start = forms.DateTimeField(widget=DateTimeInput, required=False, help_text="empty: as is")
    end = forms.DateTimeField(widget=DateTimeInput)
    exclusive = forms.BooleanField(required=False)

    def text(self) -> str:
        d = self.cleaned_data
        row = d["reservation"]
        start = row.start if row.started or d["start"] is None else d["start"]
        flag = "exclusive" if d["exclusive"] else "shared"
        return f"{row.pk},{_iso(start)},{_iso(d['end'])},{flag}"


class DeleteChangeForm(ChangeForm):
    kind, title = "delete", "Delete a reservation"
    reservation = _reservations()

    def text(self) -> str:
        return str(self.cleaned_data["reservation"].pk)


class ShareChangeForm(ChangeForm):
    kind, title = "share", "Change a share"
    instance = forms.ModelChoiceField(models.Instance.objects.all(), to_field_name="path")
    share = forms.FloatField(min_value=0)

    def text(self) -> str:
        return f"{self.cleaned_data['instance'].path}={self.cleaned_data['share']:g}"


class AllocationChangeForm(ChangeForm):
    kind, title = "allocation", "Set or remove an allocation"
    instance = forms.ModelChoiceField(
        models.Instance.objects.all(), to_field_name="path", label="Node"
    )
    seconds = forms.FloatField(min_value=0, required=False, help_text="empty: remove it")
    enforce = forms.ChoiceField(choices=[(mode, mode) for mode in m.ENFORCE_MODES])
    period_start = forms.DateTimeField(
        widget=DateTimeInput, required=False, help_text="empty: the rolling window"
    )
    period_length = forms.FloatField(min_value=0.000001, required=False, label="Period (s)")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if (cleaned.get("period_start") is None) != (cleaned.get("period_length") is None):
            self.add_error("period_length", "A fixed period needs both its start and length.")
        return cleaned

    def text(self) -> str:
        d = self.cleaned_data
        node = d["instance"].path
        if d["seconds"] is None:
            return f"{node}=none"
        period = ""
        if d["period_start"] is not None:
            period = f",{_iso(d['period_start'])},{d['period_length']:g}"
        return f"{node}={d['seconds']:g},{d['enforce']}{period}"


class StatusChangeForm(ChangeForm):
    kind, title = "status", "Pause or resume a backend"
    backend = _backends()
    action = forms.ChoiceField(choices=[("pause", "pause"), ("resume", "resume")])

    def text(self) -> str:
        return self.cleaned_data["backend"].name

    def spec(self) -> str:
        return f"{self.cleaned_data['action']}:{self.text()}"


class OverheadChangeForm(ChangeForm):
    kind, title = "overhead", "Change a backend's per-job overhead"
    backend = _backends()
    seconds = forms.FloatField(min_value=0, max_value=MAX_OVERHEAD)

    def text(self) -> str:
        return f"{self.cleaned_data['backend'].name}={self.cleaned_data['seconds']:g}"


class LoadChangeForm(ChangeForm):
    kind, title = "load", "Add synthetic load"
    backend = _backends()
    instance = _projects()
    per_hour = forms.FloatField(
        min_value=0, max_value=MAX_PER_HOUR, label="Jobs per hour", initial=60
    )

    def text(self) -> str:
        d = self.cleaned_data
        return f"{d['backend'].name},{d['instance'].path},{d['per_hour']:g}"


CHANGE_FORMS: dict[str, type[ChangeForm]] = {
    form.kind: form
    for form in (
        ReservationChangeForm,
        MoveChangeForm,
        DeleteChangeForm,
        ShareChangeForm,
        AllocationChangeForm,
        StatusChangeForm,
        OverheadChangeForm,
        LoadChangeForm,
    )
}


def change_spec(form: ChangeForm) -> str:
    """The `KIND:ARGS` text of a valid change form."""
    if isinstance(form, StatusChangeForm):
        return form.spec()
    return f"{form.kind}:{form.text()}"


class ReservationPreviewForm(forms.ModelForm):
    """The admin's reservation form, read to fill the what-if page with that change."""

    class Meta:
        model = models.Reservation
        fields = ["backend", "instance", "start", "end", "exclusive"]


class SplitDateTimeField(forms.SplitDateTimeField):
    """The admin's date and time inputs (`start_0`, `start_1`) as one moment."""


def preview_spec(row: models.Reservation, *, existing: bool) -> str:
    """The change an admin reservation form makes: a move of `row`, or a new window."""
    window = f"{_iso(row.start)},{_iso(row.end)}"
    if existing:
        return f"move:{row.pk},{window},{'exclusive' if row.exclusive else 'shared'}"
    flag = ",exclusive" if row.exclusive else ""
    return f"reservation:{row.backend.name},{row.instance.path},{window}{flag}"
