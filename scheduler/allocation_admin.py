"""The admin's allocations: on their own page and on their node's, through the service.

Every change goes through `services.allocations_set` / `allocations_remove` (the row,
the leader's input and the audit entry naming the operator); the form shows the
service's checks next to their fields. The list shows what each allocation used and
has left in its period, read as every other page reads it.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.models import construct_instance
from django.http import HttpRequest

from scheduler import models, services
from scheduler.clock import Clock
from scheduler.policy import model as m
from scheduler.selectors.allocations import AllocationStatus, allocations_status


def admin_clock() -> Clock:
    """The admin's clock (tests may swap `scheduler.admin.clock`)."""
    from scheduler import admin as scheduler_admin  # which imports this module

    return scheduler_admin.clock


class AllocationForm(forms.ModelForm):
    """An allocation on a node named by its path; the service's checks as form errors."""

    node = forms.CharField(
        max_length=200, help_text="hub, hub/group or hub/group/project (an existing node)."
    )

    class Meta:
        model = models.Allocation
        fields = ["seconds", "enforce", "period_start", "period_length"]
        help_texts = {"period_length": "Seconds (86400) or [DD] [HH:[MM:]]ss."}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:  # moving it is removing it and setting another
            self.fields["node"].initial = self.instance.instance.path
            self.fields["node"].disabled = True

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if any(name in self.errors for name in ("node", "seconds", "period_start")):
            return cleaned
        try:
            services.allocations_validate(
                path=cleaned.get("node", ""),
                seconds=cleaned.get("seconds"),
                enforce=cleaned.get("enforce") or m.QUEUE,
                period_start=cleaned.get("period_start"),
                period_length=cleaned.get("period_length"),
            )
        except ValidationError as error:
            for field, messages_ in error.message_dict.items():
                self.add_error("node" if field == "instance" else field, messages_)
        return cleaned

    def _post_clean(self) -> None:
        # The fields onto the row; the service checks it (and its node) when it writes it.
        self.instance = construct_instance(self, self.instance, self._meta.fields)


def apply_allocation(
    request: HttpRequest, path: str, data: dict[str, Any], clock: Clock
) -> models.Allocation:
    """Set what an admin form holds, as the requesting operator."""
    return services.allocations_set(
        path=path,
        seconds=data["seconds"],
        enforce=data.get("enforce") or m.QUEUE,
        period_start=data.get("period_start"),
        period_length=data.get("period_length"),
        clock=clock,
        actor=request.user,
    )


@admin.register(models.Allocation)
class AllocationAdmin(admin.ModelAdmin):
    """Allocations per instance-tree node, with what each used and has left in its period
    (the numbers of `manage.py allocation list`, the pages and the API)."""

    form = AllocationForm
    list_display = ["node", "seconds", "enforce", "period", "consumed", "left", "frees"]
    list_select_related = ["instance"]
    search_fields = ["instance__path"]
    fields = ["node", "seconds", "enforce", "period_start", "period_length"]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        self._status = {s.node: s for s in allocations_status(now=admin_clock().now())}
        return super().changelist_view(request, extra_context)

    def _of(self, obj: models.Allocation) -> AllocationStatus | None:
        return getattr(self, "_status", {}).get(obj.instance.path)

    @admin.display(description="node", ordering="instance__path")
    def node(self, obj: models.Allocation) -> str:
        return obj.instance.path

    @admin.display(description="period")
    def period(self, obj: models.Allocation) -> str:
        status = self._of(obj)
        if status is None:
            return "-"
        span = f"{status.period_start:%Y-%m-%d %H:%M} to {status.period_end:%Y-%m-%d %H:%M} UTC"
        return f"rolling ({span})" if status.rolling else span

    @admin.display(description="consumed (s)")
    def consumed(self, obj: models.Allocation) -> str:
        status = self._of(obj)
        return "-" if status is None else f"{status.consumed:g}"

    @admin.display(description="left (s)")
    def left(self, obj: models.Allocation) -> str:
        status = self._of(obj)
        return "-" if status is None else f"{status.left:g}"

    @admin.display(description="frees")
    def frees(self, obj: models.Allocation) -> str:
        status = self._of(obj)
        if status is None or not status.exhausted:
            return "-"
        return (
            "never in this period" if status.frees is None else f"{status.frees:%Y-%m-%d %H:%M} UTC"
        )

    def save_model(
        self, request: HttpRequest, obj: models.Allocation, form: Any, change: bool
    ) -> None:
        row = apply_allocation(request, form.cleaned_data["node"], form.cleaned_data, admin_clock())
        obj.pk, obj.instance = row.pk, row.instance

    def delete_model(self, request: HttpRequest, obj: models.Allocation) -> None:
        services.allocations_remove(path=obj.instance.path, clock=admin_clock(), actor=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for path in list(queryset.values_list("instance__path", flat=True)):
            services.allocations_remove(path=path, clock=admin_clock(), actor=request.user)


class AllocationInline(admin.StackedInline):
    """The node's allocation on its own page."""

    model = models.Allocation
    fields = ["seconds", "enforce", "period_start", "period_length"]
    max_num = 1
    extra = 0
    verbose_name_plural = "allocation"

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        node = obj

        class Checked(formset.form):  # type: ignore[name-defined]
            def clean(self) -> dict[str, Any]:
                cleaned = super().clean() or {}
                if node is None or cleaned.get("DELETE") or "seconds" in self.errors:
                    return cleaned
                try:
                    services.allocations_validate(
                        path=node.path,
                        seconds=cleaned.get("seconds"),
                        enforce=cleaned.get("enforce") or m.QUEUE,
                        period_start=cleaned.get("period_start"),
                        period_length=cleaned.get("period_length"),
                    )
                except ValidationError as error:
                    for field, texts in error.message_dict.items():
                        self.add_error(None if field == "instance" else field, texts)
                return cleaned

        formset.form = Checked
        return formset
