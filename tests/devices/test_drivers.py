"""Drivers: any BackendV2 by its dotted path; its configuration and calibration from its Target."""

from __future__ import annotations

import json

import pytest
from qiskit_ibm_runtime.models import BackendConfiguration
from qiskit_ibm_runtime.utils.backend_converter import convert_to_target
from qiskit_ibm_runtime.utils.backend_decoder import (
    decode_backend_configuration,
    properties_from_server_data,
)

from scheduler.devices import drivers
from tests.devices.tiny_backend import TinyBackend

TINY = "tests.devices.tiny_backend.TinyBackend"


def test_a_driver_is_instantiated_with_its_json_arguments() -> None:
    backend = drivers.instantiate(TINY, json.dumps({"cx_error": 0.05}))
    assert isinstance(backend, TinyBackend)
    assert backend.target["cx"][(0, 1)].error == 0.05


@pytest.mark.parametrize(
    ("path", "args", "says"),
    [
        ("TinyBackend", "{}", "is not a dotted path"),
        ("tests.devices.no_such_module.TinyBackend", "{}", "cannot import tests.devices.no_such"),
        ("tests.devices.tiny_backend.Missing", "{}", "has no Missing"),
        ("tests.devices.tiny_backend.NotABackend", "{}", "is not a Qiskit BackendV2 class"),
        (TINY, '{"qubits": 3}', "failed: "),
        (TINY, "[1]", "must be a JSON object"),
        (TINY, "{", "are not JSON"),
    ],
)
def test_a_driver_that_cannot_be_loaded_says_why(path: str, args: str, says: str) -> None:
    with pytest.raises(drivers.DriverError, match=says):
        drivers.instantiate(path, args)


def test_the_client_builds_the_drivers_own_target_from_the_derived_answers() -> None:
    backend = TinyBackend()
    conf = drivers.configuration(backend)
    props = drivers.properties(backend, date="2026-01-02T03:04:05+00:00")
    assert conf["n_qubits"] == 3 and conf["coupling_map"] == [[0, 1], [1, 2]]
    assert conf["basis_gates"] == ["cx", "rz", "sx", "x"] and conf["dt"] == pytest.approx(1.0)
    decode_backend_configuration(conf)
    target = convert_to_target(
        configuration=BackendConfiguration.from_dict(conf),
        properties=properties_from_server_data(props),
    )
    own = backend.target
    assert target.num_qubits == own.num_qubits
    assert set(target.operation_names) == set(own.operation_names)
    assert set(target["cx"]) == {(0, 1), (1, 2)}  # one way, as the driver has them
    for name in ("cx", "sx", "x", "measure"):
        for qargs, props_ in own[name].items():
            assert target[name][qargs].error == pytest.approx(props_.error)
            assert target[name][qargs].duration == pytest.approx(props_.duration)
    for mine, theirs in zip(target.qubit_properties, own.qubit_properties, strict=True):
        assert mine.t1 == pytest.approx(theirs.t1) and mine.t2 == pytest.approx(theirs.t2)
