"""`/sessions`: create, read, close, cancel; other users' sessions stay hidden."""

from __future__ import annotations

import pytest

from scheduler import models
from scheduler.policy import model as m
from tests.api.conftest import Caller, job_body, pause

pytestmark = pytest.mark.django_db


def open_session(caller: Caller, **extra: object) -> dict:
    response = caller.post("/sessions", {"backend": "sim_a", "mode": "dedicated", **extra})
    assert response.status_code == 200, response.content
    return response.json()


def test_it_creates_a_session_for_the_selected_instance(
    alice: Caller, backend: models.Backend
) -> None:
    body = open_session(alice, instance=alice.crn, max_ttl=600)
    session = models.Session.objects.get(uid=body["id"])
    assert session.owner == alice.user and session.instance.path == "hub/group/alice"
    assert body["state"] == "open" and body["accepting_jobs"] is True
    assert body["max_ttl"] == 600 and body["warnings"] == []


def test_it_reads_a_session_as_the_client_expects(alice: Caller, backend: models.Backend) -> None:
    uid = open_session(alice, mode="batch")["id"]
    details = alice.get(f"/sessions/{uid}").json()
    assert details["backend_name"] == "sim_a" and details["mode"] == "batch"
    assert details["state"] == "open" and details["elapsed_time"] == 0
    assert details["started_at"] is None and details["closed_at"] is None


def test_patch_closes_and_a_new_job_is_refused(alice: Caller, backend: models.Backend) -> None:
    uid = open_session(alice)["id"]
    assert alice.patch(f"/sessions/{uid}", {"accepting_jobs": False}).status_code == 204
    details = alice.get(f"/sessions/{uid}").json()
    assert details["accepting_jobs"] is False and details["state"] == "closed"
    assert details["closed_at"] is not None
    refused = alice.post("/jobs", job_body(session_id=uid))
    assert refused.status_code == 409
    assert refused.json()["code"] == m.SESSION_CLOSED


def test_delete_close_cancels_the_queued_jobs(alice: Caller, backend: models.Backend) -> None:
    pause(backend)
    uid = open_session(alice)["id"]
    job = alice.post("/jobs", job_body(session_id=uid)).json()["id"]
    assert alice.delete(f"/sessions/{uid}/close").status_code == 204
    assert models.Job.objects.get(uid=job).status == m.CANCELLED
    assert alice.get(f"/jobs/{job}").json()["state"]["reason"] == "The session was cancelled."


def test_another_users_session_is_404(alice: Caller, bob: Caller, backend: models.Backend) -> None:
    uid = open_session(alice)["id"]
    assert bob.get(f"/sessions/{uid}").status_code == 404
    assert bob.patch(f"/sessions/{uid}", {"accepting_jobs": False}).status_code == 404
    assert bob.delete(f"/sessions/{uid}/close").status_code == 404
    assert bob.post("/jobs", job_body(session_id=uid)).status_code == 404
    assert models.Session.objects.get(uid=uid).accepting_jobs is True


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"backend": "nope"}, 404),
        ({"backend": "sim_a", "mode": "weird"}, 400),
        ({"backend": "sim_a", "max_ttl": -1}, 400),
        ({"backend": "sim_a", "max_ttl": 10**30}, 400),
        ({"mode": "batch"}, 400),
    ],
)
def test_bad_session_requests_are_refused(
    alice: Caller, backend: models.Backend, body: dict, status: int
) -> None:
    response = alice.post("/sessions", body)
    assert response.status_code == status
    assert set(response.json()) == {"code", "message"}
    assert not models.Session.objects.exists()


def test_open_sessions_per_user_are_limited(
    alice: Caller, backend: models.Backend, settings: object
) -> None:
    settings.QDASH_MAX_OPEN_SESSIONS_PER_USER = 2  # type: ignore[attr-defined]
    first = alice.post("/sessions", {"backend": "sim_a"}).json()["id"]
    assert alice.post("/sessions", {"backend": "sim_a"}).status_code == 200
    refused = alice.post("/sessions", {"backend": "sim_a"})
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_sessions"
    job = alice.post("/jobs", job_body(start_session=True))
    assert job.status_code == 429  # a job that would start a session counts too
    assert models.Session.objects.count() == 2 and not models.Job.objects.exists()
    alice.patch(f"/sessions/{first}", {"accepting_jobs": False})  # closes: nothing queued
    assert alice.post("/sessions", {"backend": "sim_a"}).status_code == 200
