"""The Qiskit Runtime-compatible REST API (django-ninja).

The same routes answer under `/api/v1/` and under `/experimental/api/v1/`: the
real client uses a URL verbatim only when it contains "experimental".
"""

from __future__ import annotations

from typing import Any

from ninja import NinjaAPI

from scheduler.api import backends, errors, jobs, sessions, usage
from scheduler.api.auth import BearerAuth
from scheduler.api.identity import build_identity

ROUTERS = (backends.router, sessions.router, jobs.router, usage.router)

# OpenAPI links: what a created job's or session's id can be passed to. Schema-driven
# clients and stateful fuzzers (schemathesis) follow them from creation to use.
LINKS = {
    "jobs_post": (
        "jobs_get",
        "jobs_results",
        "jobs_logs",
        "jobs_metrics",
        "jobs_tags",
        "jobs_cancel",
        "jobs_delete",
    ),
    "sessions_post": ("sessions_get", "sessions_patch", "sessions_delete"),
}


class QdashAPI(NinjaAPI):
    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        operations = {
            op["operationId"].rsplit("_api_", 1)[-1].split("_", 1)[-1]: op
            for methods in schema["paths"].values()
            for op in methods.values()
        }
        for source, targets in LINKS.items():
            if source not in operations:
                continue
            links = {
                target: {
                    "operationId": operations[target]["operationId"],
                    "parameters": {"uid": "$response.body#/id"},
                }
                for target in targets
                if target in operations
            }
            for status, response in operations[source]["responses"].items():
                if str(status).startswith("2"):
                    response["links"] = links
        return schema


def build(namespace: str, *, docs: bool) -> NinjaAPI:
    api = QdashAPI(
        title="qdash",
        version="1",
        description="Qiskit Runtime-compatible API of qdash.",
        auth=BearerAuth(),
        urls_namespace=namespace,
        docs_url="/docs" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    errors.install(api)
    for router in ROUTERS:
        api.add_router("", router, url_name_prefix=namespace)
    return api


api = build("qdash-api", docs=True)
experimental_api = build("qdash-api-experimental", docs=False)
identity_api = build_identity()
