"""Who calls, and for which instance: the bearer token and the `Service-CRN` header."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from scheduler import models
from scheduler.api import callers, throttle
from scheduler.api.callers import member_projects
from scheduler.api.errors import ApiError

CRN_PREFIX = "crn:v1:qdash:public:quantum-computing:local:a/qdash:"


def instance_crn(path: str) -> str:
    """The CRN the client sends for a project instance (`crn:` and 10 colon fields)."""
    return f"{CRN_PREFIX}{path.replace('/', '.')}::"


@dataclass(frozen=True)
class Principal:
    """The caller: a user, and the project instance its `Service-CRN` header selects."""

    user: Any
    instance: models.Instance | None

    def require_instance(self) -> models.Instance:
        if self.instance is None:
            raise ApiError(
                400,
                "instance_required",
                "Select an instance with the Service-CRN header (issue_token --json lists them).",
            )
        return self.instance


def select_instance(
    user: Any, crn: str | None, projects: Sequence[models.Instance] | None = None
) -> models.Instance | None:
    """The member instance a CRN (or a plain hub/group/project path) names; 403 otherwise.
    `projects`: the user's project instances, when the caller knows them already."""
    projects = member_projects(user) if projects is None else projects
    if not crn:
        return projects[0] if len(projects) == 1 else None
    for node in projects:
        if crn in (instance_crn(node.path), node.path):
            return node
    raise ApiError(
        403, "forbidden_instance", "You are not a member of the instance in Service-CRN."
    )


class BearerAuth(HttpBearer):
    """A JWT from `/identity/token`, or a plain API key, as `Authorization: Bearer`."""

    def authenticate(self, request: HttpRequest, token: str) -> Principal:
        caller = throttle.check_secret(request, token, callers.caller_of, code="unauthorized")
        throttle.key_request(request, caller.token.pk)
        user = caller.token.user
        instance = select_instance(user, request.headers.get("Service-CRN"), caller.projects)
        return Principal(user, instance)


def principal(request: HttpRequest) -> Principal:
    auth = getattr(request, "auth", None)
    assert isinstance(auth, Principal)
    return auth
