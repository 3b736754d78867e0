"""The what-if page: operators only; stacking changes; running both futures; applying
after a confirmation; the admin's "preview the effect"."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from scheduler import models
from scheduler.clock import FakeClock, from_ticks
from scheduler.engine import eager
from scheduler.policy import model as m
from scheduler.whatif import views
from tests.factories import BackendFactory, UserFactory, instance

pytestmark = pytest.mark.django_db

NOW = from_ticks(1_800_000_000_000_000)
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def user(username: str, **fields: Any) -> Any:
    account = UserFactory.build(username=username, password=None, **fields)
    account.save()
    return account


@pytest.fixture(autouse=True)
def world(monkeypatch: pytest.MonkeyPatch, settings: Any) -> FakeClock:
    """sim_kyiv busy with a queue of two groups' jobs; the page's clock at NOW."""
    clock = FakeClock(NOW)
    monkeypatch.setattr(views, "clock", clock)
    BackendFactory(name="sim_kyiv")
    for path in ("hubX/gx/p", "hubY/gy/p"):
        instance(path)
    jobs = [
        m.Submit(job=f"{tag}{n}", instance=path, backend="sim_kyiv", duration=600_000_000)
        for n in range(4)
        for tag, path in (("x", "hubX/gx/p"), ("y", "hubY/gy/p"))
    ]
    eager.step(jobs, at=NOW - MINUTE)
    return clock


@pytest.fixture
def operator(client: Client) -> Client:
    client.force_login(user("root", is_staff=True, is_superuser=True))
    return client


def url(name: str, *specs: str, **params: Any) -> str:
    return f"{reverse(name)}?{urlencode([('c', s) for s in specs] + list(params.items()))}"


WINDOW = "reservation:sim_kyiv,hubY/gy/p,+30m,+150m,exclusive"


def test_only_operators_see_the_page(client: Client) -> None:
    assert client.get(reverse("what_if"))["Location"].startswith(reverse("login"))
    client.force_login(user("alice"))
    for name in ("what_if", "what_if_run", "what_if_apply"):
        assert client.get(url(name, WINDOW)).status_code == 403
    assert client.post(reverse("what_if_apply"), {"c": WINDOW}).status_code == 403
    assert models.Reservation.objects.count() == 0


def test_an_operator_stacks_a_change_from_its_form(operator: Client) -> None:
    form = {
        "add": "reservation",
        "reservation-backend": "sim_kyiv",
        "reservation-instance": "hubY/gy/p",
        "reservation-start": "2027-01-15T14:00",
        "reservation-end": "2027-01-15T16:00",
        "reservation-exclusive": "on",
        "hours": "6",
        "seed": "3",
    }
    answer = operator.get(reverse("what_if"), form)
    spec = "reservation:sim_kyiv,hubY/gy/p,2027-01-15T14:00:00+00:00,2027-01-15T16:00:00+00:00"
    assert answer.status_code == 302
    assert answer["Location"] == url("what_if", f"{spec},exclusive", hours=6.0, seed=3)
    page = operator.get(answer["Location"])
    assert b"Add an exclusive window for hubY/gy/p on sim_kyiv" in page.content
    assert b'hx-trigger="load"' in page.content  # the futures run as the page opens
    dropped = operator.get(answer["Location"] + "&drop=0")
    assert dropped["Location"] == url("what_if", hours=6.0, seed=3)


def test_an_operator_stacks_an_allocation_from_its_form(operator: Client) -> None:
    form = {
        "add": "allocation",
        "allocation-instance": "hubX/gx",
        "allocation-seconds": "90",
        "allocation-enforce": "safe",
        "allocation-period_start": "",
        "allocation-period_length": "",
    }
    answer = operator.get(reverse("what_if"), form)
    assert answer.status_code == 302
    assert answer["Location"] == url("what_if", "allocation:hubX/gx=90,safe", hours=4.0, seed=0)
    half = operator.get(reverse("what_if"), form | {"allocation-period_length": "60"})
    assert half.status_code == 400 and b"needs both its start and length" in half.content


def test_a_change_that_cannot_be_made_is_refused_with_its_reason(operator: Client) -> None:
    overlapping = "reservation:sim_kyiv,hubX/gx/p,+60m,+90m"
    page = operator.get(url("what_if", WINDOW, overlapping))
    assert page.status_code == 400
    assert b"overlaps the one of hubY/gy/p on sim_kyiv" in page.content
    assert page.content.count(b"drop=") == 2  # each stacked change can still be removed
    assert operator.get(url("what_if_run", overlapping, WINDOW)).status_code == 400
    assert operator.get(url("what_if_run", WINDOW, hours=25)).status_code == 400
    bad_form = operator.get(reverse("what_if"), {"add": "share", "share-instance": "hubX"})
    assert bad_form.status_code == 400 and b"This field is required" in bad_form.content
    assert operator.get(reverse("what_if"), {"add": "teleport"}).status_code == 400


def test_the_run_shows_waits_backends_and_both_timelines(operator: Client) -> None:
    load = "load:sim_kyiv,hubX/gx/p,6"
    answer = operator.get(url("what_if_run", WINDOW, load, hours=4, seed=1))
    assert answer.status_code == 200
    page = answer.content.decode()
    assert 'data-node="hubX/gx/p" data-origin="synthetic"' in page
    assert "from the synthetic load" in page and "from known jobs" in page
    timeline = json.loads(page.split('id="whatif-data" type="application/json">')[1].split("<")[0])
    kyiv = timeline["backends"]["sim_kyiv"]
    assert kyiv["without"]["windows"] == []
    assert [w["exclusive"] for w in kyiv["with"]["windows"]] == [True]
    assert kyiv["without"]["spans"] and kyiv["with"]["spans"]
    again = operator.get(url("what_if_run", WINDOW, load, hours=4, seed=1)).content.decode()
    assert again.split("Computed in")[0] == page.split("Computed in")[0]  # deterministic


def test_applying_asks_first_then_goes_through_the_admins_services(operator: Client) -> None:
    specs = [WINDOW, "share:hubX=3", "load:sim_kyiv,hubX/gx/p,6"]
    confirm = operator.get(url("what_if_apply", *specs))
    assert confirm.status_code == 200 and b"Apply now" in confirm.content
    assert models.Reservation.objects.count() == 0  # nothing yet

    done = operator.post(reverse("what_if_apply"), {"c": specs, "hours": "4", "seed": "0"})
    assert done["Location"] == url("what_if", "load:sim_kyiv,hubX/gx/p,6", hours=4.0, seed=0)
    window = models.Reservation.objects.get()
    assert (window.instance.path, window.exclusive) == ("hubY/gy/p", True)
    assert (window.start, window.end) == (NOW + 30 * MINUTE, NOW + 150 * MINUTE)
    assert models.Instance.objects.get(path="hubX").share == 3
    # The leader applied both (the eager leader of the tests): the window is in the log.
    assert models.Event.objects.filter(kind="reservation_changed", reservation=window).exists()
    assert not models.Input.objects.exists()


def test_applying_a_change_that_no_longer_fits_changes_nothing(operator: Client) -> None:
    models.Reservation.objects.create(
        backend=models.Backend.objects.get(name="sim_kyiv"),
        instance=instance("hubX/gx/p"),
        start=NOW + HOUR,
        end=NOW + 2 * HOUR,
    )
    answer = operator.post(reverse("what_if_apply"), {"c": [WINDOW, "share:hubX=3"]})
    assert answer.status_code == 400 and b"Nothing was changed" in answer.content
    assert models.Reservation.objects.count() == 1
    assert models.Instance.objects.get(path="hubX").share == 1
    only_load = operator.post(reverse("what_if_apply"), {"c": ["load:sim_kyiv,hubX/gx/p,6"]})
    assert only_load.status_code == 400


def test_applying_needs_the_admins_permissions(client: Client) -> None:
    staff = user("op", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="change_instance"))
    client.force_login(staff)
    assert client.post(reverse("what_if_apply"), {"c": ["share:hubX=3"]}).status_code == 302
    assert client.post(reverse("what_if_apply"), {"c": [WINDOW]}).status_code == 403
    assert models.Reservation.objects.count() == 0


def test_the_admin_form_previews_its_reservation_on_the_page(operator: Client) -> None:
    add = operator.get(reverse("admin:scheduler_reservation_add"))
    assert b'formaction="/what-if/preview"' in add.content and b"Preview the effect" in add.content
    form = {
        "backend": models.Backend.objects.get(name="sim_kyiv").pk,
        "instance": models.Instance.objects.get(path="hubY/gy/p").pk,
        "start_0": "2027-01-15",
        "start_1": "14:00:00",
        "end_0": "2027-01-15",
        "end_1": "16:00:00",
        "exclusive": "on",
        "whatif_reservation": "",
        "_whatif": "Preview the effect",
    }
    answer = operator.post(reverse("what_if_preview"), form)
    spec = "reservation:sim_kyiv,hubY/gy/p,2027-01-15T14:00:00+00:00,2027-01-15T16:00:00+00:00"
    assert answer["Location"] == url("what_if", f"{spec},exclusive")
    assert models.Reservation.objects.count() == 0  # previewing saves nothing


def test_editing_an_open_window_previews_a_move_of_its_end(operator: Client) -> None:
    row = models.Reservation.objects.create(
        backend=models.Backend.objects.get(name="sim_kyiv"),
        instance=instance("hubY/gy/p"),
        start=NOW - HOUR,
        end=NOW + HOUR,
        started=True,
    )
    edit = operator.get(reverse("admin:scheduler_reservation_change", args=[row.pk]))
    assert f'name="whatif_reservation" value="{row.pk}"'.encode() in edit.content
    form = {"end_0": "2027-01-15", "end_1": "12:00:00", "whatif_reservation": row.pk}
    answer = operator.post(reverse("what_if_preview"), form)
    window = f"{(NOW - HOUR).isoformat()},2027-01-15T12:00:00+00:00"
    assert answer["Location"] == url("what_if", f"move:{row.pk},{window},shared")
    assert operator.post(reverse("what_if_preview"), {"whatif_reservation": 999}).status_code == 400
    row.ended = True
    row.save()
    assert operator.post(reverse("what_if_preview"), form).status_code == 400


def test_a_preview_without_a_reservation_form_is_refused_not_an_error(admin_client: Any) -> None:
    response = admin_client.post("/what-if/preview", {})
    assert response.status_code == 400
    assert b"not valid" in response.content


def test_changes_applied_from_the_page_are_in_the_audit_log_with_their_operator(
    operator: Client,
) -> None:
    from auditlog.models import LogEntry

    done = operator.post(reverse("what_if_apply"), {"c": [WINDOW, "pause:sim_kyiv"]})
    assert done.status_code == 302
    window = LogEntry.objects.get(content_type__model="reservation")
    pause = LogEntry.objects.get(additional_data={"action": "pause"})
    assert window.action == LogEntry.Action.CREATE
    assert pause.changes_dict == {"status": ["online", "paused"]}
    assert window.actor is not None and window.actor.username == "root"
    assert pause.actor == window.actor
