"""The session timeline: sessions' spans, their jobs and closes, and what each viewer sees."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.test import override_settings

from scheduler import models, selectors
from scheduler.policy import model as m
from tests.factories import UserFactory
from tests.selectors.driver import Driver

pytestmark = pytest.mark.django_db


def test_the_session_timeline_marks_jobs_and_closes(
    backend: models.Backend, traffic: datetime, driver: Driver
) -> None:
    driver.act(m.CloseSession("qs1"), at=traffic + timedelta(seconds=240))
    staff = UserFactory(username="op", is_staff=True)

    timeline = selectors.session_timeline(
        since=traffic, now=traffic + timedelta(minutes=5), user=staff
    )

    assert {(s["session"], s["state"]) for s in timeline["spans"]} >= {
        ("qs1", m.ACTIVE),
    }
    assert [(c["session"], c["at"]) for c in timeline["closes"]] == [
        ("qs1", traffic + timedelta(seconds=240))
    ]
    marks = {j["job"]: j for j in timeline["jobs"]}
    assert set(marks) == {"qj3", "qj4"}  # the session's jobs, not qj1 / qj2
    assert marks["qj3"]["at"] == traffic + timedelta(seconds=70) and marks["qj3"]["started"]


def test_the_session_timeline_tells_batches_from_dedicated_sessions(
    backend: models.Backend, traffic: datetime, driver: Driver
) -> None:
    driver.act(m.CloseSession("qs1"), at=traffic + timedelta(seconds=240))
    staff = UserFactory(username="op", is_staff=True)
    window = {"since": traffic, "now": traffic + timedelta(minutes=5), "user": staff}
    dedicated = selectors.session_timeline(**window)
    models.Session.objects.filter(uid="qs1").update(mode=m.BATCH)

    batch = selectors.session_timeline(**window)

    assert {s["mode"] for s in dedicated["spans"] + dedicated["closes"]} == {m.DEDICATED}
    assert {s["mode"] for s in batch["spans"] + batch["closes"]} == {m.BATCH}


def test_researchers_see_other_instances_sessions_under_stand_in_names(
    backend: models.Backend, traffic: datetime
) -> None:
    outsider = UserFactory(username="eve")
    member = UserFactory(username="bob")
    models.Instance.objects.get(path="hubB/g/p").members.add(member)
    now = traffic + timedelta(minutes=5)

    seen_by = {
        user.username: selectors.session_timeline(since=traffic, now=now, user=user)
        for user in (outsider, member)
    }

    # eve sees that a session held sim_a, not whose: a stand-in name, the same each time.
    (stand_in,) = {s["session"] for s in seen_by["eve"]["spans"]}
    assert stand_in.startswith("other-") and "qs1" not in str(seen_by["eve"])
    again = selectors.session_timeline(since=traffic, now=now, user=outsider)
    assert {s["session"] for s in again["spans"]} == {stand_in}
    assert seen_by["eve"]["jobs"] == []
    assert {s["session"] for s in seen_by["bob"]["spans"]} == {"qs1"}
    assert {j["job"] for j in seen_by["bob"]["jobs"]} == {"qj3", "qj4"}


@override_settings(QDASH_VISIBILITY="open")
def test_an_open_facility_shows_every_session_by_name(
    backend: models.Backend, traffic: datetime
) -> None:
    outsider = UserFactory(username="eve")
    timeline = selectors.session_timeline(
        since=traffic, now=traffic + timedelta(minutes=5), user=outsider
    )
    assert {s["session"] for s in timeline["spans"]} == {"qs1"}
    assert timeline["jobs"] == []  # never other instances' jobs
