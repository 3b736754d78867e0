"""The audit log: operators' changes and actions, who made them, before and after."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.test import Client
from django.utils import timezone

from scheduler import models
from tests.factories import BackendFactory, UserFactory, instance, queue_job
from tests.test_admin import reservation_form, run_action, user, whole_minute

pytestmark = pytest.mark.django_db


@pytest.fixture
def root() -> Any:
    return user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin(client: Client, root: Any) -> Client:
    client.force_login(root)
    return client


@pytest.fixture
def backend() -> models.Backend:
    instance("h/g/p")
    return BackendFactory.create(name="sim_a")


def entries(model: type) -> list[LogEntry]:
    """What people did to `model` (the fixtures' own creations have no actor)."""
    logged = LogEntry.objects.get_for_model(model).filter(actor__isnull=False)
    return list(logged.order_by("id"))


def test_a_reservation_added_and_moved_in_the_admin_is_logged_with_its_operator(
    admin: Client, root: Any, backend: models.Backend
) -> None:
    start = whole_minute() + timedelta(hours=2)
    admin.post(
        "/admin/scheduler/reservation/add/",
        reservation_form(backend, start, start + timedelta(hours=1)),
    )
    reservation = models.Reservation.objects.get()
    later = reservation_form(backend, start, start + timedelta(hours=3))
    admin.post(f"/admin/scheduler/reservation/{reservation.pk}/change/", later)

    created, moved = entries(models.Reservation)
    assert (created.action, created.actor) == (LogEntry.Action.CREATE, root)
    assert moved.action == LogEntry.Action.UPDATE and moved.actor == root
    before, after = moved.changes_dict["end"]
    assert before != after and str((start + timedelta(hours=3)).year) in after


def test_pausing_and_resuming_a_backend_are_logged(
    admin: Client, root: Any, backend: models.Backend
) -> None:
    run_action(admin, "backend", "pause", backend)
    run_action(admin, "backend", "resume", backend)

    pause, resume = entries(models.Backend)
    assert pause.actor == root and pause.additional_data == {"action": "pause"}
    assert pause.changes_dict == {"status": ["online", "paused"]}
    assert resume.changes_dict == {"status": ["paused", "online"]}


def test_cancelling_someone_elses_job_is_logged_and_ones_own_is_not(
    admin: Client, root: Any, backend: models.Backend
) -> None:
    owner = UserFactory(username="owner")
    job = queue_job("qj1", inst="h/g/p", at=timezone.now(), duration=600)
    models.Job.objects.filter(pk=job.pk).update(owner=owner)
    run_action(admin, "job", "cancel", job)

    (entry,) = entries(models.Job)
    assert entry.actor == root and entry.additional_data == {"action": "cancel job"}
    assert entry.changes_dict["status"][1] == "Cancelled"


def test_share_and_member_changes_are_logged(
    admin: Client, root: Any, backend: models.Backend
) -> None:
    node = models.Instance.objects.get(path="h/g/p")
    member = UserFactory(username="member")
    data = {"path": node.path, "share": "4", "members": [str(member.pk)]}
    data |= {"allocation-TOTAL_FORMS": "0", "allocation-INITIAL_FORMS": "0"}  # its inline
    assert admin.post(f"/admin/scheduler/instance/{node.pk}/change/", data).status_code == 302

    logged = entries(models.Instance)
    assert any(e.changes_dict.get("share") == ["1.0", "4.0"] for e in logged)
    assert any("members" in e.changes_dict for e in logged)
    assert {e.actor for e in logged} == {root}


def test_revoking_an_api_key_is_logged_without_its_secret(client: Client) -> None:
    from scheduler.auth_tokens import tokens_issue

    alice = user("alice")
    token, key = tokens_issue(user=alice, name="laptop")
    client.force_login(alice)
    client.post(f"/account/tokens/{token.pk}/revoke")

    deleted = [e for e in entries(models.ApiToken) if e.action == LogEntry.Action.DELETE]
    assert len(deleted) == 1 and deleted[0].actor == alice
    assert key not in str(deleted[0].changes) and token.key_hash not in str(deleted[0].changes)


def test_the_log_is_searchable_and_read_only_in_the_admin(
    admin: Client, backend: models.Backend
) -> None:
    run_action(admin, "backend", "pause", backend)
    page = admin.get("/admin/auditlog/logentry/", {"q": "paused"})
    assert page.status_code == 200 and "sim_a" in page.content.decode()
    entry = LogEntry.objects.get(additional_data={"action": "pause"})
    assert admin.get("/admin/auditlog/logentry/add/").status_code == 403
    assert (
        admin.post(f"/admin/auditlog/logentry/{entry.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert LogEntry.objects.filter(pk=entry.pk).exists()
