"""Who calls, and for which instance: the bearer token and the `Service-CRN` header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from scheduler import auth_tokens, models
from scheduler.api import throttle
from scheduler.api.errors import ApiError

CRN_PREFIX = "crn:v1:qdash:public:quantum-computing:local:a/qdash:"


def instance_crn(path: str) -> str:
    """The CRN the client sends for a project instance (`crn:` and 10 colon fields)."""
    return f"{CRN_PREFIX}{path.replace('/', '.')}::"


def member_projects(user: Any) -> list[models.Instance]:
    """The project instances `user` may submit in."""
    return [node for node in user.instances.order_by("path") if node.is_project]


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


def select_instance(user: Any, crn: str | None) -> models.Instance | None:
    """The member instance a CRN (or a plain hub/group/project path) names; 403 otherwise."""
    projects = member_projects(user)
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
        throttle.failures_allowed(request)
        try:
            row = auth_tokens.access_token_check(token=token.strip())
        except auth_tokens.TokenError as error:
            throttle.failure(request)
            raise ApiError(401, "unauthorized", str(error)) from None
        throttle.key_request(request, row.pk)
        instance = select_instance(row.user, request.headers.get("Service-CRN"))
        return Principal(row.user, instance)


def principal(request: HttpRequest) -> Principal:
    auth = getattr(request, "auth", None)
    assert isinstance(auth, Principal)
    return auth
