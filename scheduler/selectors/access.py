"""Who sees what: jobs and sessions a user may see, instances they submit in, the job table."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from scheduler import models
from scheduler.policy import model as m

User = AbstractBaseUser | AnonymousUser
JOB_FILTERS = ("backend", "instance", "status", "session")
TABLE_ROWS = 50


def visible_instances(*, user: User) -> frozenset[str] | None:
    """The instances whose jobs, sessions and paths `user` sees on shared pages; None: all.

    Operators see everything. With QDASH_VISIBILITY=private (the default) a
    researcher sees their own instances only: other instances' running jobs,
    sessions and reservations show as "another instance", with their timers and
    lanes but without ids or paths, as IBM's queue shows a researcher only their
    own jobs. With QDASH_VISIBILITY=open everyone sees every id and path (never
    other instances' job inputs or results).
    """
    if getattr(user, "is_staff", False) or settings.QDASH_VISIBILITY == "open":
        return None
    paths = models.Instance.objects.filter(members=user.pk).values_list("path", flat=True)
    return frozenset(paths)


def shown(path: str | None, visible: frozenset[str] | None) -> bool:
    """Whether a viewer who sees `visible` sees things of instance `path` by name."""
    return visible is None or (path is not None and path in visible)


def node_shown(path: str, visible: frozenset[str] | None) -> bool:
    """Whether a viewer who sees `visible` sees tree node `path` (a hub or group above
    one of their instances, or the instance) by name."""
    return visible is None or any(p == path or p.startswith(path + "/") for p in visible)


def pseudonym(uid: str) -> str:
    """A stable stand-in for another instance's session id: the same on every render,
    telling sessions apart without revealing them."""
    digest = hmac.new(settings.SECRET_KEY.encode(), uid.encode(), hashlib.sha256).hexdigest()
    return "other-" + digest[:6]


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
