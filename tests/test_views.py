"""Browser pages: login, the dashboard and its job table, job, session and fair-share pages."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import django
import pytest
from django.test import Client
from django.utils import timezone

from scheduler import circuits, executor, models
from scheduler.engine import eager
from scheduler.policy import model as m
from tests.factories import UserFactory, queue_job, submit_at, two_hubs

pytestmark = pytest.mark.django_db


@pytest.fixture
def backend() -> models.Backend:
    return two_hubs()


@pytest.fixture
def staff(client: Client) -> Client:
    client.force_login(UserFactory(username="op", is_staff=True))
    return client


@pytest.fixture
def held_session(backend: models.Backend) -> datetime:
    """hubA's session ran a job and now holds sim_a; hubB's job waits. Returns the deadline."""
    now = timezone.now()
    submit_at(
        "qsessjob1",
        inst="hubA/g/p",
        at=now - timedelta(seconds=10),
        session="qsessabc123",
        start_session=True,
    )
    eager.step([], at=now - timedelta(seconds=5))  # the job ended: interactive timeout runs
    submit_at("qwaiting1", inst="hubB/g/p", at=now - timedelta(seconds=1))
    deadline = models.Session.objects.get(uid="qsessabc123").interactive_deadline
    assert deadline is not None
    return deadline


@pytest.mark.parametrize("url", ["/", "/jobs/qx", "/sessions/qx", "/fair-share"])
def test_it_sends_anonymous_users_to_login(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_it_logs_in_and_out(client: Client) -> None:
    UserFactory(username="alice")
    assert "Log in" in client.get("/login/").content.decode()
    response = client.post("/login/", {"username": "alice", "password": "pw"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.post("/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_it_shows_backend_cards_charts_and_jobs(staff: Client, held_session: datetime) -> None:
    page = staff.get("/").content.decode()
    assert 'id="backend-sim_a"' in page
    assert "holds the backend" in page
    assert 'data-deadline="' + held_session.isoformat() in page  # client-side countdown
    assert 'id="flow-sim_a"' in page and 'id="chart-data"' in page
    assert "qwaiting1" in page and "qsessjob1" in page
    assert "vendor/plotly/plotly.min.js" in page and "django_htmx/htmx-2.min.js" in page


def test_the_job_table_filters_as_an_htmx_partial(staff: Client, held_session: datetime) -> None:
    response = staff.get("/", {"status": "Queued"}, headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<div id="job-table">')
    assert "qwaiting1" in html and "qsessjob1" not in html
    html = staff.get("/", {"instance": "hubA/g/p"}, headers={"HX-Request": "true"}).content.decode()
    assert "qsessjob1" in html and "qwaiting1" not in html
    html = staff.get("/", {"session": "qsessabc123"}, headers={"HX-Request": "true"}).content
    assert b"qsessjob1" in html and b"qwaiting1" not in html


def test_a_researcher_sees_only_jobs_of_their_instances(
    client: Client, held_session: datetime
) -> None:
    user = UserFactory(username="bob")
    models.Instance.objects.get(path="hubB/g/p").members.add(user)
    client.force_login(user)
    html = client.get("/").content.decode()
    assert "qwaiting1" in html and "qsessjob1" not in html
    assert client.get("/jobs/qsessjob1").status_code == 404
    assert client.get("/jobs/qwaiting1").status_code == 200


def test_the_job_page_says_why_a_queued_job_waits(staff: Client, held_session: datetime) -> None:
    html = staff.get("/jobs/qwaiting1").content.decode()
    assert "Queue position" in html and "1 on sim_a" in html
    assert "Estimated start" in html and "an estimate" in html
    assert f'datetime="{held_session.isoformat()}"' in html  # starts when the hold ends
    assert "sim_a is held by session qsessa… of hubA/g/p until" in html
    assert "(interactive timeout)" in html


def test_the_job_page_says_a_job_newer_than_the_plan_has_its_position_being_computed(
    staff: Client, backend: models.Backend
) -> None:
    now = timezone.now()
    submit_at("qrun", inst="hubA/g/p", at=now - timedelta(seconds=2), seconds=600)
    html = staff.get("/jobs/qrun").content.decode()
    assert "Queue position" not in html  # running: nothing to compute
    queue_job("qnew", inst="hubA/g/p", at=now - timedelta(seconds=1))  # no leader yet
    html = staff.get("/jobs/qnew").content.decode()
    assert 'id="job-position" data-state="being_computed"' in html
    assert "position being computed" in html and "newer than the scheduler's plan" in html
    assert "being computed with its position" in html  # the estimated start
    assert "its position is being computed" in html  # why it waits


def test_the_job_page_counts_jobs_ahead_in_the_fair_share_lane(
    staff: Client, backend: models.Backend
) -> None:
    now = timezone.now()
    submit_at("qrun", inst="hubA/g/p", at=now - timedelta(seconds=2), seconds=600)
    submit_at("qfirst", inst="hubA/g/p", at=now - timedelta(seconds=1))
    submit_at("qsecond", inst="hubB/g/p", at=now - timedelta(seconds=1))
    html = staff.get("/jobs/qsecond").content.decode()
    assert "1 on sim_a" in html  # hubA is charged qrun's run when it ends: hubB goes first
    assert "backend sim_a runs job qrun (fair-share lane)" in html
    html = staff.get("/jobs/qfirst").content.decode()
    assert "2 on sim_a" in html
    assert "1 job ahead in the fair-share lane" in html


def test_the_job_page_charts_sampler_counts(staff: Client, backend: models.Backend) -> None:
    params = circuits.sampler_params([circuits.parse_qasm(circuits.EXAMPLES["bell"])], 100)
    submit_at("qdone", inst="hubA/g/p", at=timezone.now() - timedelta(seconds=10), seconds=1)
    eager.step([], at=timezone.now())
    models.Job.objects.filter(uid="qdone").update(
        params=params, result=executor.execute("sampler", params)
    )
    html = staff.get("/jobs/qdone").content.decode()
    assert "Completed" in html and 'id="result-chart"' in html
    assert '"kind": "sampler"' in html and '"x": ["00", "11"]' in html


def test_the_job_page_charts_estimator_values_with_error_bars(
    staff: Client, backend: models.Backend
) -> None:
    params = circuits.estimator_params(circuits.parse_qasm(circuits.EXAMPLES["bell"]), ["ZZ", "XX"])
    submit_at("qest", inst="hubA/g/p", at=timezone.now() - timedelta(seconds=10), seconds=1)
    eager.step([], at=timezone.now())
    models.Job.objects.filter(uid="qest").update(
        program_id="estimator", params=params, result=executor.execute("estimator", params)
    )
    html = staff.get("/jobs/qest").content.decode()
    assert '"kind": "estimator"' in html and '"evs": [' in html and '"stds": [' in html


def test_the_session_page_lets_its_owner_close_it(client: Client, held_session: datetime) -> None:
    owner = UserFactory(username="alice")
    models.Session.objects.filter(uid="qsessabc123").update(owner=owner)
    client.force_login(owner)
    html = client.get("/sessions/qsessabc123").content.decode()
    assert "interactive timeout in" in html and "qsessjob1" in html
    assert "Cancel session" in html and 'id="timeline-data"' in html
    response = client.post("/sessions/qsessabc123/close", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert models.Session.objects.get(uid="qsessabc123").state == m.CLOSED


def test_only_the_owner_or_staff_may_cancel_a_session(
    client: Client, held_session: datetime
) -> None:
    user = UserFactory(username="mallory")
    models.Instance.objects.get(path="hubA/g/p").members.add(user)
    client.force_login(user)
    assert "Cancel session" not in client.get("/sessions/qsessabc123").content.decode()
    assert client.post("/sessions/qsessabc123/cancel").status_code == 403
    assert models.Session.objects.get(uid="qsessabc123").state == m.ACTIVE


def test_the_fair_share_page_shows_the_tree_and_the_next_jobs(
    staff: Client, held_session: datetime
) -> None:
    models.Instance.objects.filter(path="hubA").update(share=2)
    html = staff.get("/fair-share").content.decode()
    for path in ("hubA", "hubA/g", "hubA/g/p", "hubB/g/p"):
        assert f">{path}<" in html
    assert "qwaiting1" in html


def test_plotly_and_htmx_are_served_from_the_installed_packages(client: Client) -> None:
    from django.contrib.staticfiles import finders

    site_packages = str(Path(django.__file__).resolve().parents[1])
    for path in ("vendor/plotly/plotly.min.js", "django_htmx/htmx-2.min.js"):
        found = finders.find(path)
        assert found and str(found).startswith(site_packages), path
    assert finders.find("django_htmx/ext/hx-ws-2.min.js")


def test_the_session_event_log_reads_as_words(staff: Client, held_session: datetime) -> None:
    page = staff.get("/sessions/qsessabc123").content.decode()

    assert "max ttl=8h 0m 0s" in page  # a span of clock ticks, as a duration
    assert "status=Completed" in page and "error=None" not in page  # no empty values
