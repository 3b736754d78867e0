"""`/backends` and `/instances/usage`, under both prefixes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from scheduler import models
from tests.api.conftest import Caller, job_body
from tests.factories import BackendFactory

pytestmark = pytest.mark.django_db

CONFIG_KEYS = {
    "backend_name", "backend_version", "n_qubits", "basis_gates", "gates", "local",
    "simulator", "conditional", "open_pulse", "memory", "coupling_map", "online_date",
}  # fmt: skip


@pytest.mark.parametrize("prefix", ["/api/v1", "/experimental/api/v1"])
def test_it_lists_backends_under_both_prefixes(
    alice: Caller, backend: models.Backend, prefix: str
) -> None:
    response = Client().get(f"{prefix}/backends?include_mocks=True", headers=alice.headers())
    assert response.status_code == 200
    assert [d["name"] for d in response.json()["devices"]] == ["sim_a"]
    device = response.json()["devices"][0]
    assert device["status"] == {"name": "online", "reason": ""} and device["queue_length"] == 0
    assert device["physical_qubits"] == device["num_qubits"] == 5


def test_configuration_has_what_the_client_needs(alice: Caller, backend: models.Backend) -> None:
    config = alice.get("/backends/sim_a/configuration").json()
    assert set(config) >= CONFIG_KEYS
    assert config["simulator"] is False and config["n_qubits"] == 5
    assert config["coupling_map"] is None
    assert {"cx", "rz", "sx", "measure"} <= set(config["basis_gates"])
    assert all({"name", "parameters", "qasm_def"} <= set(g) for g in config["gates"])


def test_properties_are_an_ideal_readout_for_every_qubit(
    alice: Caller, backend: models.Backend
) -> None:
    properties = alice.get("/backends/sim_a/properties").json()
    assert properties["backend_name"] == "sim_a" and properties["gates"] == []
    assert len(properties["qubits"]) == 5
    assert {(p["name"], p["value"]) for p in properties["qubits"][4]} == {
        ("readout_error", 0.0),
        ("prob_meas0_prep1", 0.0),
        ("prob_meas1_prep0", 0.0),
    }


@pytest.mark.parametrize("suffix", ["configuration", "properties"])
def test_a_calibration_id_is_unknown(alice: Caller, backend: models.Backend, suffix: str) -> None:
    response = alice.get(f"/backends/sim_a/{suffix}?calibration_id=c1")
    assert response.status_code == 404 and response.json()["code"] == "unknown_calibration"


def test_status_counts_the_queue_and_shows_a_pause(alice: Caller, backend: models.Backend) -> None:
    alice.post("/jobs", job_body(tags=["runs"]))
    alice.post("/jobs", job_body(tags=["waits"]))  # the backend runs one job at a time
    status = alice.get("/backends/sim_a/status").json()
    assert status["state"] is True and status["status"] == "active"
    assert status["length_queue"] == 1
    models.Backend.objects.filter(pk=backend.pk).update(status=models.Backend.Status.PAUSED)
    assert alice.get("/backends/sim_a/status").json()["status"] == "paused"


@pytest.mark.parametrize("suffix", ["configuration", "properties", "status"])
def test_an_unknown_backend_is_404(alice: Caller, suffix: str) -> None:
    response = alice.get(f"/backends/nope/{suffix}")
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_backend"


def test_usage_is_the_instances_charged_time(alice: Caller, bob: Caller) -> None:
    node = models.Instance.objects.get(path="hub/group/alice")
    now = timezone.now()
    models.UsageCharge.objects.create(
        instance=node, kind="run", microseconds=2_500_000, ended_at=now - timedelta(seconds=5)
    )
    assert alice.get("/instances/usage").json()["usage_consumed_seconds"] == 2.5
    assert bob.get("/instances/usage").json()["usage_consumed_seconds"] == 0


def test_openapi_schema_and_docs_are_served() -> None:
    schema = Client().get("/api/v1/openapi.json")
    assert schema.status_code == 200
    assert "/api/v1/jobs" in schema.json()["paths"]
    assert Client().get("/api/v1/docs").status_code == 200


def test_openapi_links_lead_from_a_created_job_or_session_to_its_operations() -> None:
    paths = Client().get("/api/v1/openapi.json").json()["paths"]
    created = paths["/api/v1/jobs"]["post"]["responses"]["201"]["links"]
    targets = {link["operationId"] for link in created.values()}
    job_ops = {op["operationId"] for op in paths["/api/v1/jobs/{uid}"].values()}
    assert job_ops <= targets
    assert {link["parameters"]["uid"] for link in created.values()} == {"$response.body#/id"}
    session = paths["/api/v1/sessions"]["post"]["responses"]["200"]["links"]
    assert paths["/api/v1/sessions/{uid}/close"]["delete"]["operationId"] in {
        link["operationId"] for link in session.values()
    }
    # Errors are declared for every operation, in the one error shape.
    for methods in paths.values():
        for op in methods.values():
            assert {"400", "401", "404", "429", "500"} <= set(op["responses"])


def test_status_reads_the_newest_sample_of_its_own_backend(
    alice: Caller, backend: models.Backend
) -> None:
    """One query answers it: the backend and its newest queue sample, not another's."""
    other = BackendFactory(name="sim_b", num_qubits=5)
    now = timezone.now()
    models.QueueSample.objects.create(backend=backend, at=now, reservation=9, fair_share=9)
    models.QueueSample.objects.create(backend=backend, at=now, reservation=1, session=2)
    models.QueueSample.objects.create(backend=other, at=now, fair_share=40)
    assert alice.get("/backends/sim_a/status").json()["length_queue"] == 3
    assert alice.get("/backends/sim_b/status").json()["length_queue"] == 40
    unknown = alice.get("/backends/nope/status")
    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_backend"
