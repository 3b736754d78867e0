"""Who sees what: jobs and sessions a user may see, instances they submit in, the job table."""

from __future__ import annotations

from collections.abc import Mapping

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from scheduler import models
from scheduler.policy import model as m

User = AbstractBaseUser | AnonymousUser
JOB_FILTERS = ("backend", "instance", "status", "session")
TABLE_ROWS = 50


def jobs_visible(*, user: User) -> QuerySet[models.Job]:
    """Every job for staff; a researcher's own jobs and those of their instances."""
    jobs = models.Job.objects.select_related("backend", "instance", "session")
    if getattr(user, "is_staff", False):
        return jobs
    return jobs.filter(Q(owner_id=user.pk) | Q(instance__members=user.pk)).distinct()


def sessions_visible(*, user: User) -> QuerySet[models.Session]:
    sessions = models.Session.objects.select_related("backend", "instance", "owner")
    if getattr(user, "is_staff", False):
        return sessions
    return sessions.filter(Q(owner_id=user.pk) | Q(instance__members=user.pk)).distinct()


def instances_of(*, user: User) -> QuerySet[models.Instance]:
    """The project instances a user may submit in."""
    return models.Instance.objects.filter(members=user.pk).distinct()


def sessions_joinable(*, user: User) -> QuerySet[models.Session]:
    """A user's own sessions that still accept jobs, newest first."""
    return (
        models.Session.objects.filter(owner_id=user.pk, accepting_jobs=True)
        .exclude(state=m.CLOSED)
        .select_related("backend", "instance")
    )


def jobs_table(*, user: User, filters: Mapping[str, str]) -> list[models.Job]:
    """The newest visible jobs, narrowed by the table's filters (empty = any)."""
    jobs = jobs_visible(user=user).defer("params", "result")
    if value := filters.get("backend"):
        jobs = jobs.filter(backend__name=value)
    if value := filters.get("instance"):
        jobs = jobs.filter(instance__path=value)
    if value := filters.get("status"):
        jobs = jobs.filter(status=value)
    if value := filters.get("session"):
        jobs = jobs.filter(session__uid=value)
    return list(jobs[:TABLE_ROWS])


def job_filter_choices(*, user: User) -> dict[str, list[str]]:
    if getattr(user, "is_staff", False):
        instances = models.Instance.objects.all()
    else:
        instances = models.Instance.objects.filter(
            Q(members=user.pk) | Q(jobs__owner_id=user.pk)
        ).distinct()
    return {
        "backend": list(models.Backend.objects.values_list("name", flat=True)),
        "instance": [
            path
            for path in instances.order_by("path").values_list("path", flat=True)
            if path.count("/") == 2
        ],
        "status": list(models.Job.Status.values),
    }
