"""Device backends through the API: their configuration and calibration, the ISA check,
the modeled time the client reads."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from scheduler import circuits, models
from tests.api.conftest import Caller, bell_params, job_body
from tests.devices.circuits import KYIV, isa
from tests.devices.tiny_backend import TINY_PATH
from tests.factories import BackendFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def kyiv() -> models.Backend:
    return BackendFactory(
        name="sim_kyiv",
        num_qubits=127,
        profile="kyiv",
        job_overhead=timedelta(seconds=1),
        compile_time=timedelta(seconds=2),
        shot_time=timedelta(microseconds=250),
    )


def isa_body(**extra: Any) -> dict[str, Any]:
    params = circuits.sampler_params([isa(KYIV, "bell")], 1000)
    return {"program_id": "sampler", "backend": "sim_kyiv", "params": params, **extra}


def test_a_profiles_configuration_is_the_devices_under_its_qdash_name(
    alice: Caller, kyiv: models.Backend
) -> None:
    config = alice.get("/backends/sim_kyiv/configuration").json()
    assert config["backend_name"] == "sim_kyiv" and config["n_qubits"] == 127
    assert config["simulator"] is False and config["open_pulse"] is False
    assert config["basis_gates"] == ["ecr", "id", "rz", "sx", "x"]
    assert {"if_else", "for_loop", "switch_case", "delay"} <= set(config["supported_instructions"])
    assert len(config["coupling_map"]) == 144 and config["dt"] == pytest.approx(0.2222222)
    assert config["processor_type"] == {"family": "Eagle", "revision": 3}
    assert config["max_shots"] == 100_000 and config["max_experiments"] == 100
    ecr = next(gate for gate in config["gates"] if gate["name"] == "ecr")
    assert len(ecr["coupling_map"]) == 144
    assert "hamiltonian" not in config


def test_an_ideal_backends_configuration_has_no_device_fields(
    alice: Caller, backend: models.Backend
) -> None:
    config = alice.get("/backends/sim_a/configuration").json()
    assert config["coupling_map"] is None
    assert not {"supported_instructions", "dt", "timing_constraints"} & set(config)
    assert all("coupling_map" not in gate for gate in config["gates"])


def test_a_profiles_properties_are_its_calibration_with_dates(
    alice: Caller, kyiv: models.Backend
) -> None:
    props = alice.get("/backends/sim_kyiv/properties").json()
    assert props["backend_name"] == "sim_kyiv" and len(props["qubits"]) == 127
    assert props["last_update_date"].startswith("2025-")
    names = {item["name"] for item in props["qubits"][0]}
    assert {"T1", "T2", "frequency", "readout_error", "readout_length"} <= names
    ecr = [gate for gate in props["gates"] if gate["gate"] == "ecr"]
    assert len(ecr) == 144 and all(p["date"] for p in ecr[0]["parameters"])


def test_properties_before_the_calibration_are_empty_and_after_it_the_calibration(
    alice: Caller, kyiv: models.Backend
) -> None:
    assert (
        alice.get("/backends/sim_kyiv/properties", updated_before="2020-01-01T00:00:00").json()
        == {}
    )
    later = alice.get("/backends/sim_kyiv/properties", updated_before="2030-01-01T00:00:00+00:00")
    assert later.json()["backend_name"] == "sim_kyiv"


def test_a_non_isa_circuit_is_refused_with_ibms_sentence_and_nothing_is_stored(
    alice: Caller, kyiv: models.Backend
) -> None:
    response = alice.post("/jobs", job_body("sim_kyiv"))  # the Bell example: h and cx
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_circuit"
    assert (
        "The instruction h on qubits (0,) is not supported by the target system."
        in (body["message"])
    )
    assert "Circuits that do not match the target hardware definition" in body["message"]
    assert not models.Job.objects.exists() and not models.Input.objects.exists()


def test_an_isa_job_carries_its_modeled_time_and_a_session_reuses_its_circuits(
    alice: Caller, kyiv: models.Backend
) -> None:
    session = alice.post("/sessions", {"backend": "sim_kyiv", "mode": "dedicated"}).json()["id"]
    ids = [alice.post("/jobs", isa_body(session_id=session)).json()["id"] for _ in range(2)]
    first, second = (alice.get(f"/jobs/{uid}").json() for uid in ids)
    seconds = first["estimated_running_time_seconds"]
    assert 1 + 2 + 1000 * 250e-6 < seconds < 1 + 2 + 1000 * 260e-6  # + the circuit's length
    assert second["estimated_running_time_seconds"] == pytest.approx(seconds - 2)
    caching = alice.get(f"/jobs/{ids[1]}/metrics").json()["caching"]
    assert caching == {"circuits": 1, "cached_circuits": 1, "seconds_saved": 2.0}


def test_an_offline_drivers_backend_answers_409_and_takes_no_jobs(alice: Caller) -> None:
    BackendFactory(name="sim_own", driver="tests.devices.gone.Backend", offline_reason="gone")
    response = alice.get("/backends/sim_own/configuration")
    assert response.status_code == 409 and response.json()["code"] == "backend_offline"
    refused = alice.post("/jobs", job_body("sim_own"))
    assert refused.status_code == 400 and refused.json()["code"] == "backend_offline"
    assert not models.Job.objects.exists()


def test_a_drivers_configuration_comes_from_its_target(alice: Caller) -> None:
    BackendFactory(name="sim_own", num_qubits=3, driver=TINY_PATH, driver_args={"cx_error": 0.1})
    config = alice.get("/backends/sim_own/configuration").json()
    assert config["backend_name"] == "sim_own" and config["coupling_map"] == [[0, 1], [1, 2]]
    props = alice.get("/backends/sim_own/properties").json()
    cx = [gate for gate in props["gates"] if gate["gate"] == "cx"]
    assert [p["value"] for p in cx[0]["parameters"] if p["name"] == "gate_error"] == [0.1]
    refused = alice.post("/jobs", {**job_body("sim_own"), "params": bell_params()})
    assert refused.status_code == 400  # h is not one of its gates either
    assert json.dumps(refused.json()).count("not supported by the target system") == 1
