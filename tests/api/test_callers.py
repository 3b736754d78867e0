"""Remembered bearers (scheduler/api/callers.py): a repeated call skips the token's
queries, and every way of revoking still refuses the next call."""

from __future__ import annotations

import time
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from scheduler import models
from scheduler.api import callers
from tests.api.conftest import Caller, job_body

pytestmark = pytest.mark.django_db


def exchange(key: str) -> str:
    answer = Client().post("/identity/token", {"apikey": key})
    assert answer.status_code == 200
    return str(answer.json()["access_token"])


def status(bearer: str, crn: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {bearer}"} | ({"Service-CRN": crn} if crn else {})
    return Client().get("/api/v1/backends/sim_a/status", headers=headers)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The monotonic clock the memory reads, moved by hand."""
    now = [1_000.0]
    monkeypatch.setattr(callers, "monotonic", lambda: now[0])
    return now


@pytest.mark.parametrize("kind", ["jwt", "key"])
def test_a_repeated_call_does_not_read_the_key_or_the_instances(
    alice: Caller, backend: models.Backend, kind: str
) -> None:
    bearer = exchange(alice.key) if kind == "jwt" else alice.key
    assert status(bearer, alice.crn).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert status(bearer, alice.crn).status_code == 200
    tables = " ".join(q["sql"] for q in queries.captured_queries)
    assert "scheduler_apitoken" not in tables and "scheduler_instance" not in tables


def test_memory_holds_no_secret(alice: Caller, backend: models.Backend) -> None:
    bearer = exchange(alice.key)
    assert status(bearer).status_code == 200
    assert bearer not in callers._callers and alice.key not in callers._callers
    assert all(len(digest) == 64 for digest in callers._callers)


def test_revoking_the_key_on_the_account_page_refuses_the_next_call(
    alice: Caller, backend: models.Backend
) -> None:
    bearer = exchange(alice.key)
    assert status(bearer).status_code == 200
    page = Client()
    page.force_login(alice.user)
    token = models.ApiToken.objects.get(user=alice.user)
    assert page.post(f"/account/tokens/{token.pk}/revoke").status_code == 302
    refused = status(bearer)
    assert refused.status_code == 401
    assert "revoked" in refused.json()["message"]
    assert status(alice.key).status_code == 401


def test_deleting_a_key_in_the_admin_or_the_shell_refuses_the_next_call(
    alice: Caller, backend: models.Backend
) -> None:
    bearer = exchange(alice.key)
    assert status(bearer).status_code == 200
    models.ApiToken.objects.filter(user=alice.user).delete()
    assert status(bearer).status_code == 401


def test_a_deactivated_or_deleted_user_is_refused_at_once(
    alice: Caller, bob: Caller, backend: models.Backend
) -> None:
    assert status(alice.key).status_code == 200 and status(bob.key).status_code == 200
    alice.user.is_active = False
    alice.user.save()
    assert status(alice.key).status_code == 401
    bob.user.delete()
    assert status(bob.key).status_code == 401


def test_leaving_an_instance_is_refused_at_once(alice: Caller, backend: models.Backend) -> None:
    assert status(alice.key, alice.crn).status_code == 200
    node = models.Instance.objects.get(path="hub/group/alice")
    node.members.remove(alice.user)
    answer = status(alice.key, alice.crn)
    assert answer.status_code == 403
    assert answer.json()["code"] == "forbidden_instance"


def test_a_change_without_signals_counts_after_the_memory_lapses(
    alice: Caller, backend: models.Backend, clock: list[float], settings: Any
) -> None:
    """Another process's revocation reaches this one through the database only: within
    QDASH_AUTH_CACHE_SECONDS."""
    settings.QDASH_AUTH_CACHE_SECONDS = 1.0
    assert status(alice.key).status_code == 200
    type(alice.user).objects.filter(pk=alice.user.pk).update(is_active=False)  # no signal
    assert status(alice.key).status_code == 200  # remembered for up to a second
    clock[0] += 1.01
    assert status(alice.key).status_code == 401


def test_an_access_token_is_not_remembered_past_its_expiry(
    alice: Caller, backend: models.Backend, clock: list[float]
) -> None:
    with time_machine.travel(time.time(), tick=False) as traveller:
        bearer = exchange(alice.key)
        assert status(bearer).status_code == 200
        traveller.shift(3601)  # the monotonic clock stays: only the token's own end counts
        refused = status(bearer)
        assert refused.status_code == 401
        assert "expired" in refused.json()["message"]


def test_bad_bearers_are_never_remembered_and_still_throttled(
    alice: Caller, backend: models.Backend, settings: Any
) -> None:
    settings.QDASH_API_FAILURES_PER_MINUTE = 3
    answers = [status("qdash_" + "x" * 40).status_code for _ in range(5)]
    assert answers == [401, 401, 401, 429, 429]
    assert not callers._callers


def test_with_no_memory_every_call_is_checked(
    alice: Caller, backend: models.Backend, settings: Any
) -> None:
    settings.QDASH_AUTH_CACHE_SECONDS = 0
    assert status(alice.key).status_code == 200
    assert not callers._callers
    with CaptureQueriesContext(connection) as queries:
        assert status(alice.key).status_code == 200
    assert any("scheduler_apitoken" in q["sql"] for q in queries.captured_queries)


def test_a_remembered_caller_submits_in_its_instance(
    alice: Caller, bob: Caller, backend: models.Backend
) -> None:
    """The instance a submission is stored in comes from the remembered projects."""
    assert alice.post("/jobs", job_body()).status_code == 201
    answer = alice.post("/jobs", job_body())
    assert answer.status_code == 201
    job = models.Job.objects.get(uid=answer.json()["id"])
    assert job.instance.path == "hub/group/alice" and job.owner_id == alice.user.pk
    other = Client().post(
        "/api/v1/jobs",
        job_body(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {alice.key}", "Service-CRN": bob.crn},
    )
    assert other.status_code == 403
