"""The admin: pages render, reservations are validated, actions go through the engine."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.contrib.admin import site
from django.contrib.messages import get_messages
from django.db.models import Model
from django.test import Client
from django.utils import timezone

from scheduler import models, wakeup
from scheduler.admin import JobAdmin, SessionAdmin
from scheduler.engine import eager
from scheduler.policy import model as m
from tests.factories import BackendFactory, UserFactory, instance

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


def user(username: str, **fields: Any) -> Any:
    # UserFactory.create() warns (factory_boy saves again after `set_password`), and
    # warnings are errors: build, then save once. The client logs in without a
    # password, so skip the slow hashing.
    account = UserFactory.build(username=username, password=None, **fields)
    account.save()
    return account


@pytest.fixture
def admin(client: Client) -> Client:
    client.force_login(user("root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def backend() -> models.Backend:
    instance("h/g/p")
    return BackendFactory.create(name="sim_a")


@pytest.fixture
def wakes(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """Records every scheduler wake-up the admin asks for (and still wakes it)."""
    calls: list[None] = []
    real = wakeup.wake

    def wake(**kwargs: Any) -> None:
        calls.append(None)
        real(**kwargs)

    monkeypatch.setattr(wakeup, "wake", wake)
    return calls


def submit(job: str, **extra: Any) -> m.Submit:
    return m.Submit(job=job, instance="h/g/p", backend="sim_a", duration=3600_000_000, **extra)


def step(*actions: m.Action) -> None:
    eager.step(list(actions), at=timezone.now())


def split(moment: datetime) -> dict[str, str]:
    """A datetime as the admin's split date and time inputs post it."""
    return {"0": f"{moment:%Y-%m-%d}", "1": f"{moment:%H:%M:%S}"}


def reservation_form(backend: models.Backend, start: datetime, end: datetime) -> dict[str, str]:
    return {
        "backend": str(backend.pk),
        "instance": str(instance("h/g/p").pk),
        **{f"start_{k}": v for k, v in split(start).items()},
        **{f"end_{k}": v for k, v in split(end).items()},
        "note": "",
    }


def run_action(admin: Client, model: str, action: str, *rows: Model) -> Any:
    return admin.post(
        f"/admin/scheduler/{model}/",
        {"action": action, "_selected_action": [str(row.pk) for row in rows]},
    )


def whole_minute() -> datetime:
    return timezone.now().replace(second=0, microsecond=0)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/scheduler/backend/",
        "/admin/scheduler/instance/",
        "/admin/scheduler/reservation/",
        "/admin/scheduler/session/",
        "/admin/scheduler/job/",
        "/admin/scheduler/usagecharge/",
        "/admin/scheduler/event/",
        "/admin/auth/user/",
        "/admin/scheduler/reservation/add/",
        "/admin/scheduler/instance/add/",
        "/admin/scheduler/allocation/",
        "/admin/scheduler/allocation/add/",
    ],
)
def test_it_renders_every_page(admin: Client, backend: models.Backend, url: str) -> None:
    now = whole_minute()
    models.Reservation.objects.create(
        backend=backend, instance=instance("h/g/p"), start=now - HOUR, end=now + HOUR
    )
    step(
        m.CreateSession(session="s1", instance="h/g/p", backend="sim_a"),
        submit("j1", session="s1"),
        submit("j2"),
    )
    models.UsageCharge.objects.create(
        instance=instance("h/g/p"), kind="prior", microseconds=5_000_000, ended_at=now
    )

    response = admin.get(url)

    assert response.status_code == 200


def test_it_shows_the_running_job_and_queue_length(admin: Client, backend: models.Backend) -> None:
    step(submit("j1"), submit("j2"), submit("j3"))

    response = admin.get("/admin/scheduler/backend/")

    row = response.context["cl"].result_list.get()
    assert (row.running_uid, row.queued) == ("j1", 2)


def test_it_shows_a_job_read_only_with_inputs_collapsed(
    admin: Client, backend: models.Backend
) -> None:
    step(submit("j1"))
    job = models.Job.objects.get(uid="j1")

    response = admin.get(f"/admin/scheduler/job/{job.pk}/change/")

    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    assert b"collapse" in response.content


def test_it_lists_windows_upcoming_first_and_ended_last(
    admin: Client, backend: models.Backend
) -> None:
    now, project = whole_minute(), instance("h/g/p")
    for name, start in [("old", -3), ("older", -5), ("later", 3), ("current", -1), ("next", 1)]:
        models.Reservation.objects.create(
            backend=backend,
            instance=project,
            start=now + start * HOUR,
            end=now + (start + 1.5) * HOUR,
            note=name,
        )

    response = admin.get("/admin/scheduler/reservation/")

    rows = list(response.context["cl"].result_list)
    assert [r.note for r in rows] == ["current", "next", "later", "old", "older"]
    assert b"in window" in response.content and b"upcoming" in response.content


def test_it_adds_a_reservation_and_wakes_the_scheduler(
    admin: Client, backend: models.Backend, wakes: list[None]
) -> None:
    start = whole_minute() - timedelta(minutes=1)

    response = admin.post(
        "/admin/scheduler/reservation/add/", reservation_form(backend, start, start + HOUR)
    )

    assert response.status_code == 302
    reservation = models.Reservation.objects.get()
    assert (reservation.start, reservation.end) == (start, start + HOUR)
    assert len(wakes) == 1
    assert reservation.started  # the engine opened the window at once
    assert not [
        str(msg) for msg in get_messages(response.wsgi_request) if msg.level_tag == "warning"
    ]


def test_it_refuses_an_overlapping_reservation(admin: Client, backend: models.Backend) -> None:
    start = whole_minute() + HOUR
    models.Reservation.objects.create(
        backend=backend, instance=instance("h/g/p"), start=start, end=start + 2 * HOUR
    )

    response = admin.post(
        "/admin/scheduler/reservation/add/",
        reservation_form(backend, start + HOUR, start + 3 * HOUR),
    )

    assert response.status_code == 200
    assert "The window overlaps" in str(response.context["adminform"].form.non_field_errors())
    assert models.Reservation.objects.count() == 1


def test_it_refuses_a_window_that_does_not_end_after_it_starts(
    admin: Client, backend: models.Backend
) -> None:
    start = whole_minute() + HOUR

    response = admin.post(
        "/admin/scheduler/reservation/add/", reservation_form(backend, start, start)
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "end": ["The window must end after it starts."]
    }
    assert not models.Reservation.objects.exists()


def test_it_warns_when_the_window_would_bind_an_active_session(
    admin: Client, backend: models.Backend
) -> None:
    step(
        m.CreateSession(session="s1", instance="h/g/p", backend="sim_a"), submit("j1", session="s1")
    )
    assert models.Session.objects.get(uid="s1").state == m.ACTIVE
    start = whole_minute() + 2 * timedelta(minutes=1)

    response = admin.post(
        "/admin/scheduler/reservation/add/", reservation_form(backend, start, start + HOUR)
    )

    assert response.status_code == 302
    assert models.Reservation.objects.exists()
    warnings = [
        str(msg) for msg in get_messages(response.wsgi_request) if msg.level_tag == "warning"
    ]
    assert len(warnings) == 1
    assert "s1 (active)" in warnings[0]


def test_it_edits_a_reservation_without_touching_what_the_engine_tracks(
    admin: Client, backend: models.Backend
) -> None:
    now = whole_minute()
    reservation = models.Reservation.objects.create(
        backend=backend, instance=instance("h/g/p"), start=now - HOUR, end=now + HOUR
    )
    step()  # the window opens
    reservation.refresh_from_db()
    assert reservation.started

    response = admin.post(
        f"/admin/scheduler/reservation/{reservation.pk}/change/",
        {**{f"end_{k}": v for k, v in split(now + 2 * HOUR).items()}, "note": "extended"},
    )

    assert response.status_code == 302
    reservation.refresh_from_db()
    assert (reservation.end, reservation.note, reservation.started) == (
        now + 2 * HOUR,
        "extended",
        True,
    )


def test_it_pauses_and_resumes_a_backend_through_the_engine(
    admin: Client, backend: models.Backend
) -> None:
    run_action(admin, "backend", "pause", backend)

    backend.refresh_from_db()
    assert backend.status == m.PAUSED
    assert models.Event.objects.filter(kind="backend_status", backend=backend).count() == 1

    run_action(admin, "backend", "resume", backend)

    backend.refresh_from_db()
    assert backend.status == m.ONLINE
    statuses = models.Event.objects.filter(kind="backend_status").values_list("detail", flat=True)
    assert list(statuses) == [{"status": m.PAUSED}, {"status": m.ONLINE}]


def test_it_cancels_a_queued_job(admin: Client, backend: models.Backend) -> None:
    step(submit("j1"), submit("j2"))
    job = models.Job.objects.get(uid="j2")
    assert job.status == m.QUEUED

    run_action(admin, "job", "cancel", job)

    job.refresh_from_db()
    assert job.status == m.CANCELLED
    assert models.Job.objects.get(uid="j1").status == m.RUNNING
    ended = models.Event.objects.filter(kind="job_ended", job=job).values_list("detail", flat=True)
    assert list(ended) == [{"status": m.CANCELLED, "error": None}]


def test_it_closes_a_session_with_no_jobs(admin: Client, backend: models.Backend) -> None:
    step(m.CreateSession(session="s1", instance="h/g/p", backend="sim_a"))
    session = models.Session.objects.get(uid="s1")

    run_action(admin, "session", "close", session)

    session.refresh_from_db()
    assert (session.state, session.accepting_jobs) == (m.CLOSED, False)


def test_it_cancels_a_session_and_its_queued_jobs(admin: Client, backend: models.Backend) -> None:
    step(
        m.CreateSession(session="s1", instance="h/g/p", backend="sim_a"),
        submit("j1", session="s1"),
        submit("j2", session="s1"),
    )
    session = models.Session.objects.get(uid="s1")

    run_action(admin, "session", "cancel", session)

    session.refresh_from_db()
    assert session.state == m.CLOSED
    statuses = dict(models.Job.objects.values_list("uid", "status"))
    assert statuses == {"j1": m.RUNNING, "j2": m.CANCELLED}


@pytest.mark.parametrize("model", ["session", "job", "usagecharge", "event"])
def test_it_has_no_add_page_for_scheduler_records(admin: Client, model: str) -> None:
    response = admin.get(f"/admin/scheduler/{model}/add/")

    assert response.status_code == 403


def test_it_gives_no_add_change_or_delete_permission_on_sessions_and_jobs(
    admin: Client, rf: Any
) -> None:
    request = rf.get("/")
    request.user = user("boss", is_staff=True, is_superuser=True)

    for admin_class, model in [(SessionAdmin, models.Session), (JobAdmin, models.Job)]:
        model_admin = admin_class(model, site)
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_change_permission(request)
        assert not model_admin.has_delete_permission(request)
        assert model_admin.has_view_permission(request)


def test_it_adds_an_instance_with_its_ancestors_and_wakes_the_scheduler(
    admin: Client, backend: models.Backend, wakes: list[None]
) -> None:
    response = admin.post(
        "/admin/scheduler/instance/add/", {"path": "x/y/z", "share": "2", "members": []}
    )

    assert response.status_code == 302
    node = models.Instance.objects.get(path="x/y/z")
    assert (node.parent.path if node.parent else None, node.share) == ("x/y", 2.0)
    assert models.Instance.objects.get(path="x/y").parent == models.Instance.objects.get(path="x")
    assert len(wakes) == 1


def test_it_edits_shares_from_the_list_and_wakes_the_scheduler(
    admin: Client, backend: models.Backend, wakes: list[None]
) -> None:
    nodes = list(models.Instance.objects.order_by("path"))
    data = {
        "form-TOTAL_FORMS": str(len(nodes)),
        "form-INITIAL_FORMS": str(len(nodes)),
        "_save": "Save",
    }
    for i, node in enumerate(nodes):
        data[f"form-{i}-id"] = str(node.pk)
        data[f"form-{i}-share"] = "3" if node.path == "h/g/p" else str(node.share)

    response = admin.post("/admin/scheduler/instance/", data)

    assert response.status_code == 302
    assert models.Instance.objects.get(path="h/g/p").share == 3.0
    assert wakes
    assert not models.Input.objects.exists()  # the leader applied the new shares


def test_it_shows_a_users_instances(admin: Client, backend: models.Backend) -> None:
    alice = user("alice")
    instance("h/g/p").members.add(alice)

    response = admin.get(f"/admin/auth/user/{alice.pk}/change/")

    assert response.status_code == 200
    assert b"h/g/p" in response.content
