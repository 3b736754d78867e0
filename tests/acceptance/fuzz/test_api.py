"""Property-based fuzzing of the served OpenAPI schema (schemathesis) against the app in-process.

Every operation gets generated requests (valid and invalid) from an authenticated
researcher; path parameters name existing jobs, sessions and backends as well as
missing ones and another user's. No answer may be a 5xx, and every answer whose
status the schema declares must match the schema.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from scheduler import models
from scheduler.policy import model as m
from tests.acceptance.fuzz.aim import Target, aim
from tests.api.conftest import Caller, bell_params, job_body

pytestmark = pytest.mark.django_db

SCHEMA_PATH = "/api/v1/openapi.json"
# What a path parameter names: an object of the caller in some state, another
# user's, or whatever schemathesis generated (almost always missing).
TARGETS = ["generated", "queued", "completed", "failed", "timed_out", "other_user"]


@pytest.fixture
def world(alice: Caller, bob: Caller, backend: models.Backend) -> dict[str, str]:
    """alice's session and jobs in every state, and one of bob's; their ids by state."""
    session = alice.post("/sessions", {"backend": backend.name, "mode": "dedicated"})
    assert session.status_code == 200, session.content
    ids = {"session": session.json()["id"]}
    for state in ("queued", "completed", "failed", "timed_out"):
        created = alice.post("/jobs", job_body(backend.name, session_id=ids["session"]))
        assert created.status_code == 201, created.content
        ids[state] = created.json()["id"]
    jobs = models.Job.objects.filter
    jobs(uid=ids["completed"]).update(status=m.COMPLETED, result=json.dumps({"results": []}))
    jobs(uid=ids["failed"]).update(
        status=m.FAILED, error="execution_failed", error_message="simulation failed"
    )
    jobs(uid=ids["timed_out"]).update(status=m.FAILED, error=m.MAX_EXECUTION_TIME_EXCEEDED)
    other = bob.post("/jobs", job_body(backend.name, start_session=True))
    assert other.status_code == 201, other.content
    ids["other_user"] = other.json()["id"]
    ids["other_session"] = other.json()["session_id"]
    return ids


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """Django's WSGI handler, keeping the test's database connection open.

    As Django's test client does: `request_started` and `request_finished` would
    otherwise close the connection that holds the test transaction.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        response = HANDLER(environ, start_response)
        try:
            return [b"".join(response)]
        finally:
            response.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


HANDLER = get_wsgi_application()
# Loaded from the app at collection, as served (the view reads no database).
schema = schemathesis.openapi.from_wsgi(SCHEMA_PATH, wsgi_app)


def aim_at(case: Any, target: str, ids: dict[str, str], backend: str) -> None:
    """Point the case at the objects `target` names (`generated`: leave it as it is)."""
    if target == "generated":
        return
    other = target == "other_user"
    names = Target(
        backend=backend,
        job=ids[target],
        session=ids["other_session" if other else "session"],
        backend_path="no_such_backend" if other else backend,
        join=ids["session"] if target == "queued" else None,
    )
    aim(case, names, bell_params())


@schema.parametrize()
@schema.given(target=st.sampled_from(TARGETS))
@settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_the_api_never_answers_5xx_and_keeps_to_its_schema(
    case: Any, target: str, world: dict[str, str], alice: Caller, backend: models.Backend
) -> None:
    aim_at(case, target, world, backend.name)
    # Each example starts from the fixtures' state: a DELETE or cancel does not leak.
    savepoint = transaction.savepoint()
    try:
        case.call_and_validate(
            headers=alice.headers(),
            checks=[not_a_server_error, response_schema_conformance],
        )
    finally:
        transaction.savepoint_rollback(savepoint)
