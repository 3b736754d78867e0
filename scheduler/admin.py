"""The Django admin: reservations, backends, instances and users; read-only logs.

Every change of a backend's status, a job or a session goes through
`scheduler.services`, so it follows the rules and lands in the event log.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Case, Count, F, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.expressions import OrderBy
from django.http import HttpRequest

from scheduler import models, services
from scheduler.allocation_admin import AllocationInline, apply_allocation
from scheduler.clock import Clock, SystemClock, ticks_seconds
from scheduler.devices.forms import BackendForm
from scheduler.devices.status import backends_check

# The admin's time; tests may swap in a FakeClock.
clock: Clock = SystemClock()


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows only the scheduler writes: shown, never added, edited or deleted here.

    Actions that change them are guarded by the model's real change permission.
    """

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_operate_permission(self, request: HttpRequest) -> bool:
        opts = self.opts
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")


def _report(
    admin_obj: admin.ModelAdmin, request: HttpRequest, done: int, asked: int, verb: str
) -> None:
    """Tell how many of the selected rows the action changed."""
    noun = admin_obj.opts.verbose_name if asked == 1 else admin_obj.opts.verbose_name_plural
    level = messages.SUCCESS if done == asked else messages.WARNING
    admin_obj.message_user(request, f"{verb} {done} of {asked} {noun}.", level)


# ----------------------------------------------------------------- reservations
class ReservationForm(forms.ModelForm):
    class Meta:
        model = models.Reservation
        fields = ["backend", "instance", "start", "end", "exclusive", "note"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        window: dict[str, Any] = {}
        for name in ("backend", "start", "end"):
            if name not in self.fields:  # read-only here: the stored value
                window[name] = getattr(self.instance, name)
            elif cleaned.get(name) is None:  # missing or invalid: reported already
                return cleaned
            else:
                window[name] = cleaned[name]
        if any(name in self.fields for name in window):
            services.reservations_validate(
                reservation=models.Reservation(pk=self.instance.pk, **window)
            )
        return cleaned


@admin.register(models.Reservation)
class ReservationAdmin(admin.ModelAdmin):
    form = ReservationForm
    list_display = ["backend", "instance", "start", "end", "exclusive", "window"]
    list_filter = ["backend", "exclusive"]
    list_select_related = ["backend", "instance"]
    date_hierarchy = "start"

    def get_ordering(self, request: HttpRequest) -> list[Any]:
        # Upcoming and current windows first, soonest first; then ended ones, latest first.
        now = clock.now()
        ended = Case(When(end__lte=now, then=Value(1)), default=Value(0))
        return [ended.asc(), OrderBy(Case(When(end__gt=now, then=F("start")))), "-start"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The engine tracks whether a window started or ended; its past stays as it was.
        if obj is not None and obj.ended:
            return ["backend", "instance", "start", "end", "exclusive"]
        if obj is not None and obj.started:
            return ["backend", "instance", "start"]
        return []

    @admin.display(description="status")
    def window(self, obj: models.Reservation) -> str:
        now = clock.now()
        if now < obj.start:
            return "upcoming"
        return "in window" if now < obj.end else "ended"

    def save_model(
        self, request: HttpRequest, obj: models.Reservation, form: Any, change: bool
    ) -> None:
        # On a change write only the edited columns: `started` and `ended` belong to the engine.
        before = services.reservation_window(_stored(obj)) if change else None
        obj.save(update_fields=form.changed_data if change else None)
        services.reservations_changed(reservation_id=obj.pk, before=before, clock=clock)
        warning = services.reservations_bound_warning(reservation=obj, now=clock.now())
        if warning:
            self.message_user(request, warning, messages.WARNING)

    def delete_model(self, request: HttpRequest, obj: models.Reservation) -> None:
        pk, before = obj.pk, services.reservation_window(_stored(obj))
        super().delete_model(request, obj)
        services.reservations_changed(reservation_id=pk, before=before, clock=clock)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        windows = {r.pk: services.reservation_window(r) for r in queryset.select_related()}
        super().delete_queryset(request, queryset)
        for pk, before in windows.items():
            services.reservations_changed(reservation_id=pk, before=before, clock=clock)


def _stored(obj: models.Reservation) -> models.Reservation | None:
    """The row as stored, before the admin writes its changes."""
    return (
        models.Reservation.objects.select_related("backend", "instance").filter(pk=obj.pk).first()
    )


# --------------------------------------------------------------------- backends
@admin.register(models.Backend)
class BackendAdmin(admin.ModelAdmin):
    form = BackendForm
    list_display = ["name", "status", "num_qubits", "device", "running_job", "queue_length"]
    list_filter = ["status"]
    search_fields = ["name"]
    readonly_fields = ["status", "offline_reason", "hold_session", "hold_since"]
    actions = ["pause", "resume"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        running = models.Job.objects.filter(
            backend=OuterRef("pk"), status=models.Job.Status.RUNNING
        ).values("uid")[:1]
        return (
            super()
            .get_queryset(request)
            .annotate(
                running_uid=Subquery(running),
                queued=Count("jobs", filter=Q(jobs__status=models.Job.Status.QUEUED)),
            )
        )

    @admin.display(description="running job")
    def running_job(self, obj: Any) -> str:
        return obj.running_uid or "-"

    @admin.display(description="queue length", ordering="queued")
    def queue_length(self, obj: Any) -> int:
        return int(obj.queued)

    def save_model(
        self, request: HttpRequest, obj: models.Backend, form: Any, change: bool
    ) -> None:
        # On a change write only the edited columns: status and hold belong to the engine.
        stored = models.Backend.objects.filter(pk=obj.pk).values_list("max_runtime", flat=True)
        before = stored.first() if change else False
        changed = set(form.changed_data) | ({"num_qubits"} if obj.profile or obj.driver else set())
        obj.save(update_fields=changed if change else None)
        services.backends_changed(backend=obj, before=before, clock=clock)
        reason = backends_check(backend=obj, clock=clock)
        if reason:
            self.message_user(request, f"{obj.name} is offline: {reason}", messages.WARNING)

    @admin.display(description="device")
    def device(self, obj: models.Backend) -> str:
        return obj.profile or obj.driver or "ideal"

    @admin.action(description="Pause", permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet[models.Backend]) -> None:
        self._set_status(request, queryset, models.Backend.Status.PAUSED, "Paused")

    @admin.action(description="Resume", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[models.Backend]) -> None:
        self._set_status(request, queryset, models.Backend.Status.ONLINE, "Resumed")

    def _set_status(
        self, request: HttpRequest, queryset: QuerySet[models.Backend], status: str, verb: str
    ) -> None:
        backends = list(queryset)
        for backend in backends:
            services.backends_set_status(
                backend=backend, status=status, clock=clock, actor=request.user
            )
        done = sum(backend.status == status for backend in backends)
        _report(self, request, done, len(backends), verb)


# -------------------------------------------------------------------- instances
class InstanceForm(forms.ModelForm):
    class Meta:
        model = models.Instance
        fields = ["path", "share", "members"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        path = cleaned.get("path")
        if path and self.instance._state.adding:
            # The parent follows from the path; missing ancestors are created on save.
            parent_path = path.rpartition("/")[0]
            self.instance.parent = None
            if parent_path:
                self.instance.parent = models.Instance.objects.filter(
                    path=parent_path
                ).first() or models.Instance(path=parent_path)
        return cleaned


@admin.register(models.Instance)
class InstanceAdmin(admin.ModelAdmin):
    form = InstanceForm
    list_display = ["path", "parent", "level", "share", "member_count"]
    list_editable = ["share"]
    list_select_related = ["parent"]
    search_fields = ["path"]
    filter_horizontal = ["members"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).annotate(member_count=Count("members"))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # Jobs, sessions and charges name the path: it never changes once created.
        return ["parent", "level"] if obj is None else ["path", "parent", "level"]

    @admin.display(description="members", ordering="member_count")
    def member_count(self, obj: Any) -> int:
        return int(obj.member_count)

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        return [AllocationInline] if obj is not None else []

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not models.Allocation:
            super().save_formset(request, form, formset, change)
            return
        # Through the service: the leader's input and the audit entry with the row.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for inline in formset.forms:
            if not inline.has_changed() and not inline.cleaned_data.get("DELETE"):
                continue
            path = form.instance.path
            if inline.cleaned_data.get("DELETE"):
                services.allocations_remove(path=path, clock=clock, actor=request.user)
            else:
                apply_allocation(request, path, inline.cleaned_data, clock)

    def save_model(
        self, request: HttpRequest, obj: models.Instance, form: Any, change: bool
    ) -> None:
        if obj.parent is not None and obj.parent.pk is None:
            obj.parent = services.instances_ensure(path=obj.parent.path)
        stored = models.Instance.objects.filter(pk=obj.pk).values_list("share", flat=True)
        before = stored.first() if change else None
        super().save_model(request, obj, form, change)
        services.shares_changed(path=obj.path, before=before, clock=clock)


# --------------------------------------------------------------------- sessions
@admin.register(models.Session)
class SessionAdmin(ReadOnlyAdmin):
    list_display = ["uid", "backend", "instance", "state", "mode", "accepting_jobs", "created_at"]
    list_filter = ["state", "backend", "mode"]
    list_select_related = ["backend", "instance"]
    search_fields = ["uid"]
    date_hierarchy = "created_at"
    actions = ["close", "cancel"]

    @admin.action(description="Close (finish queued jobs, accept no more)", permissions=["operate"])
    def close(self, request: HttpRequest, queryset: QuerySet[models.Session]) -> None:
        sessions = list(queryset)
        for session in sessions:
            services.sessions_close(session=session, clock=clock, actor=request.user)
        done = sum(not s.accepting_jobs for s in sessions)
        _report(self, request, done, len(sessions), "Closed")

    @admin.action(description="Cancel (close now, cancel queued jobs)", permissions=["operate"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[models.Session]) -> None:
        sessions = list(queryset)
        for session in sessions:
            services.sessions_cancel(session=session, clock=clock, actor=request.user)
        done = sum(s.state == models.Session.State.CLOSED for s in sessions)
        _report(self, request, done, len(sessions), "Cancelled")


# ------------------------------------------------------------------------- jobs
@admin.register(models.Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = [
        "uid",
        "backend",
        "instance",
        "session",
        "status",
        "lane",
        "submitted_at",
        "started_at",
        "ended_at",
        "error",
    ]
    list_filter = ["status", "lane", "backend"]
    list_select_related = ["backend", "instance", "session"]
    search_fields = ["uid"]
    date_hierarchy = "submitted_at"
    actions = ["cancel"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "uid",
                    ("backend", "instance", "session", "owner"),
                    ("program_id", "status", "lane"),
                    ("error", "error_message"),
                    ("submitted_at", "started_at", "ended_at"),
                    ("duration", "max_execution_time", "runtime_limit"),
                    "tags",
                ]
            },
        ),
        ("Inputs and result", {"classes": ["collapse"], "fields": ["params", "result"]}),
    ]

    @admin.action(description="Cancel", permissions=["operate"])
    def cancel(self, request: HttpRequest, queryset: QuerySet[models.Job]) -> None:
        jobs = list(queryset)
        for job in jobs:
            services.jobs_cancel(job=job, clock=clock, actor=request.user)
        done = sum(job.status == models.Job.Status.CANCELLED for job in jobs)
        _report(self, request, done, len(jobs), "Cancelled")


# ---------------------------------------------------------------- usage and log
@admin.register(models.UsageCharge)
class UsageChargeAdmin(ReadOnlyAdmin):
    list_display = ["ended_at", "instance", "kind", "seconds", "job", "session"]
    list_filter = ["kind", "instance"]
    list_select_related = ["instance", "job", "session"]
    date_hierarchy = "ended_at"
    ordering = ["-ended_at", "-id"]

    @admin.display(description="seconds", ordering="microseconds")
    def seconds(self, obj: models.UsageCharge) -> str:
        return f"{ticks_seconds(obj.microseconds):g}"


@admin.register(models.Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ["at", "kind", "backend", "job", "session", "reservation", "detail"]
    list_filter = ["kind", "backend"]
    list_select_related = [
        "backend",
        "job",
        "session",
        "reservation__backend",
        "reservation__instance",
    ]
    date_hierarchy = "at"
    ordering = ["-id"]


# ------------------------------------------------------------------------ users
class MembershipInline(admin.TabularInline):
    model = models.Instance.members.through
    extra = 0
    verbose_name = "instance"
    verbose_name_plural = "instances"


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class QdashUserAdmin(UserAdmin):
    inlines = [MembershipInline]
