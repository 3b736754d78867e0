"""The Qiskit Runtime-compatible REST API (django-ninja).

The same routes answer under `/api/v1/` and under `/experimental/api/v1/`: the
real client uses a URL verbatim only when it contains "experimental".
"""

from __future__ import annotations

from ninja import NinjaAPI

from scheduler.api import backends, errors, jobs, sessions
from scheduler.api.auth import BearerAuth
from scheduler.api.identity import build_identity

ROUTERS = (backends.router, sessions.router, jobs.router)


def build(namespace: str, *, docs: bool) -> NinjaAPI:
    api = NinjaAPI(
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
