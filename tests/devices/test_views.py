"""A backend's page, and the submit form's "transpile for the device"."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.base_user import AbstractBaseUser
from django.test import Client
from django.utils import timezone

from scheduler import circuits, models
from scheduler.policy import model as m
from tests.factories import BackendFactory, UserFactory, instance

pytestmark = pytest.mark.django_db


@pytest.fixture
def kyiv() -> models.Backend:
    return BackendFactory(name="sim_kyiv", num_qubits=127, profile="kyiv")


@pytest.fixture
def alice() -> AbstractBaseUser:
    user = UserFactory(username="alice")
    instance("hubA/g/p").members.add(user)
    return user


@pytest.fixture
def researcher(client: Client, alice: AbstractBaseUser) -> Client:
    client.force_login(alice)
    return client


def test_a_device_page_draws_its_coupling_map_and_calibration(
    researcher: Client, kyiv: models.Backend
) -> None:
    models.Reservation.objects.create(
        backend=kyiv,
        instance=instance("hubA/g/p"),
        start=timezone.now() + timedelta(hours=1),
        end=timezone.now() + timedelta(hours=2),
    )
    page = researcher.get("/backends/sim_kyiv")
    assert page.status_code == 200
    html = page.content.decode()
    assert "profile <code>kyiv</code>" in html and "basis gates ecr, id, rz, sx, x" in html
    chart = page.context["calibration"].chart
    assert len(chart["x"]) == 127 and len(chart["edges"]) == 144
    assert all(edge["error"] is not None for edge in chart["edges"])
    assert 'id="coupling-data"' in html and 'src="/static/js/backend.js"' in html
    assert page.context["calibration"].date.startswith("2025-")
    medians = dict(page.context["calibration"].medians)
    assert float(medians["ecr error"]) < 0.02 and medians["T1"].endswith("µs")
    assert len(page.context["calibration"].qubits) == 127
    assert page.context["reservation"] is not None and "next-reservation" in html


def test_an_ideal_backend_page_says_so_and_draws_nothing(researcher: Client) -> None:
    BackendFactory(name="sim_a")
    html = researcher.get("/backends/sim_a").content.decode()
    assert "an ideal simulator: all-to-all, noiseless" in html and "coupling-data" not in html


def test_an_offline_backend_page_says_why(researcher: Client) -> None:
    BackendFactory(name="sim_own", driver="gone.Backend", offline_reason="cannot import gone")
    html = researcher.get("/backends/sim_own").content.decode()
    assert 'id="backend-offline">cannot import gone' in html


def test_the_page_needs_a_login_and_a_known_backend(researcher: Client) -> None:
    assert Client().get("/backends/sim_x")["Location"].startswith("/login/")
    assert researcher.get("/backends/sim_x").status_code == 404


def test_dashboard_cards_link_the_page_and_show_the_time_sessions_saved(
    researcher: Client, kyiv: models.Backend
) -> None:
    html = researcher.get("/").content.decode()
    assert '<a href="/backends/sim_kyiv">sim_kyiv</a>' in html
    assert "saved 0 s of compile time" in html


def submission(**fields: Any) -> dict[str, Any]:
    return {
        "backend": "sim_kyiv",
        "instance": "hubA/g/p",
        "primitive": "sampler",
        "shots": "1000",
        "precision": "",
        "observables": "",
        "circuit": circuits.EXAMPLES["bell"],
        "session": "",
        "max_execution_time": "",
        **fields,
    }


def test_the_form_refuses_a_circuit_the_device_cannot_run_next_to_it(
    researcher: Client, kyiv: models.Backend
) -> None:
    page = researcher.post("/submit", submission())  # the box is not ticked
    assert page.status_code == 200
    errors = page.context["form"].errors["circuit"]
    assert "The instruction h on qubits (0,) is not supported by the target system." in errors[0]
    assert not models.Job.objects.exists()


def test_ticked_the_form_transpiles_for_the_device_and_says_what_came_out(
    researcher: Client, kyiv: models.Backend
) -> None:
    response = researcher.post("/submit", submission(transpile="on"), follow=True)
    job = models.Job.objects.get()
    assert job.backend == kyiv and job.status in (m.RUNNING, m.QUEUED)
    (pub,) = circuits.decode_pubs("sampler", job.params)
    assert pub.circuit.num_qubits == 127 and "h" not in pub.circuit.count_ops()
    notes = [str(message) for message in response.context["messages"]]
    assert len(notes) == 1 and notes[0].startswith("Transpiled for sim_kyiv: depth ")
    assert "1 two-qubit gate, on qubits " in notes[0]


def test_ticked_an_estimator_observable_follows_the_layout(
    researcher: Client, kyiv: models.Backend
) -> None:
    data = submission(transpile="on", primitive="estimator", observables="ZZ", shots="")
    researcher.post("/submit", data)
    job = models.Job.objects.get()
    (pub,) = circuits.decode_pubs("estimator", job.params)
    (observable,) = pub.observables.ravel().tolist()
    (label,) = observable
    assert len(label) == 127 and label.count("Z") == 2


def test_the_form_marks_device_backends_for_the_transpile_box(
    researcher: Client, kyiv: models.Backend
) -> None:
    BackendFactory(name="sim_a")
    html = researcher.get("/submit").content.decode()
    assert '<option value="sim_kyiv" data-device="kyiv">' in html
    assert '<option value="sim_a">' in html and 'id="transpile-field"' in html
