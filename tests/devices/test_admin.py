"""The admin's backend form: profiles from the shipped list, drivers by dotted path, and a
driver that stops loading takes its backend offline without losing its queue."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from scheduler import models, services
from scheduler.devices.status import backends_check, backends_check_all
from scheduler.policy import model as m
from tests.devices.tiny_backend import TINY_PATH
from tests.factories import BackendFactory, UserFactory, instance, queue_job

pytestmark = pytest.mark.django_db
ADD = "/admin/scheduler/backend/add/"


@pytest.fixture
def admin(client: Client) -> Client:
    account = UserFactory.build(username="root", password=None, is_staff=True, is_superuser=True)
    account.save()
    client.force_login(account)
    return client


def form(**fields: Any) -> dict[str, Any]:
    return {
        "name": "sim_new",
        "num_qubits": "5",
        "profile": "",
        "driver": "",
        "driver_args": "{}",
        "max_runtime": "",
        "job_overhead": "00:00:02",
        "shot_time": "00:00:00.000250",
        "compile_time": "00:00:01",
        "description": "",
        **fields,
    }


def test_the_form_offers_every_shipped_profile(admin: Client) -> None:
    page = admin.get(ADD).content.decode()
    assert '<option value="sherbrooke">sherbrooke: 127 qubits, Eagle 3, ecr</option>' in page
    assert '<option value="fez">fez: 156 qubits, Heron 2, cz</option>' in page


def test_a_profile_sets_the_number_of_qubits(admin: Client) -> None:
    response = admin.post(ADD, form(profile="torino", num_qubits="5"))
    assert response.status_code == 302
    backend = models.Backend.objects.get(name="sim_new")
    assert (backend.profile, backend.num_qubits, backend.status) == ("torino", 133, m.ONLINE)


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"profile": "brisbane2"}, "profile", "Select a valid choice"),
        ({"driver": "no.such.Backend"}, "driver", "cannot import no.such"),
        ({"driver": "tests.devices.tiny_backend.NotABackend"}, "driver", "not a Qiskit BackendV2"),
        ({"driver": TINY_PATH, "driver_args": '{"wires": 3}'}, "driver", "failed: "),
        ({"driver": TINY_PATH, "driver_args": "[3]"}, "driver_args", "a JSON object"),
        ({"driver": TINY_PATH, "profile": "fez"}, "driver", "a profile or a driver, not both"),
    ],
)
def test_bad_device_input_is_a_form_error(
    admin: Client, fields: dict[str, str], field: str, says: str
) -> None:
    response = admin.post(ADD, form(**fields))
    assert response.status_code == 200  # the form again, with the error
    errors = response.context["adminform"].form.errors
    assert says in " ".join(errors[field]) and not models.Backend.objects.exists()


def test_a_driver_sets_the_number_of_qubits_from_its_target(admin: Client) -> None:
    response = admin.post(ADD, form(driver=TINY_PATH, driver_args='{"cx_error": 0.1}'))
    assert response.status_code == 302
    backend = models.Backend.objects.get(name="sim_new")
    assert backend.num_qubits == 3 and backend.driver_args == {"cx_error": 0.1}


def test_a_driver_that_stops_loading_takes_its_backend_offline_and_its_queue_waits() -> None:
    instance("h/g/p")
    backend = BackendFactory(name="sim_own", num_qubits=3, driver="tests.devices.gone.Backend")
    backends_check_all()  # as a server or scheduler does when it starts
    backend.refresh_from_db()
    assert backend.status == m.PAUSED
    assert "cannot import tests.devices.gone" in backend.offline_reason
    queue_job("j1", inst="h/g/p", at=timezone.now(), backend="sim_own", expected=60)
    services.backends_set_status(backend=backend, status=m.PAUSED)  # the leader steps
    assert models.Job.objects.get(uid="j1").status == m.QUEUED

    models.Backend.objects.filter(pk=backend.pk).update(driver=TINY_PATH)  # installed again
    backend.refresh_from_db()
    assert backends_check(backend=backend) == ""
    backend.refresh_from_db()
    assert backend.status == m.ONLINE and backend.offline_reason == ""
    assert models.Job.objects.get(uid="j1").status == m.RUNNING
