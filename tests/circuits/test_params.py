"""PUBs in the client's wire format, and params that are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit.primitives.containers import EstimatorPub, SamplerPub
from qiskit_ibm_runtime import EstimatorV2, RuntimeDecoder, SamplerV2

from scheduler.circuits import (
    EXAMPLES,
    CircuitError,
    decode_pubs,
    estimator_params,
    parse_qasm,
    sampler_params,
)
from tests.circuits.helpers import bell, client_params


def test_sampler_params_are_what_the_client_sends() -> None:
    circuits = [bell(), parse_qasm(EXAMPLES["ghz"])]

    ours = sampler_params(circuits, shots=4000)
    theirs = client_params(SamplerV2, circuits, shots=4000)

    assert ours == theirs
    assert ours["options"] == {} and ours["version"] == 2 and ours["support_qiskit"] is True
    for mine, client in zip(
        decode_pubs("sampler", ours), decode_pubs("sampler", theirs), strict=True
    ):
        assert isinstance(mine, SamplerPub)
        assert isinstance(client, SamplerPub)
        assert mine.circuit == client.circuit
        assert mine.shots == client.shots == 4000


def test_sampler_params_keep_parameter_values() -> None:
    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.rx(theta, 0)
    circuit.measure_all()
    values = np.array([[0.0], [np.pi], [np.pi / 2]])

    theirs = client_params(SamplerV2, [(circuit, values)])
    (pub,) = decode_pubs("sampler", theirs)

    assert pub.shots is None
    assert pub.parameter_values.shape == (3,)
    np.testing.assert_allclose(pub.parameter_values.as_array([theta]), values)


def test_estimator_params_are_what_the_client_sends() -> None:
    measured = bell()
    unmeasured = measured.remove_final_measurements(inplace=False)

    ours = estimator_params(measured, ["ZZ", "XX"], precision=0.01)
    theirs = client_params(EstimatorV2, [(unmeasured, ["ZZ", "XX"])], precision=0.01)

    assert ours == theirs
    (pub,) = decode_pubs("estimator", ours)
    assert isinstance(pub, EstimatorPub)
    assert pub.circuit == bell(measure=False)
    assert pub.precision == 0.01
    assert [dict(observable) for observable in pub.observables] == [{"ZZ": 1}, {"XX": 1}]


def test_estimator_params_refuse_an_observable_of_the_wrong_width() -> None:
    with pytest.raises(CircuitError, match="number of qubits"):
        estimator_params(bell(), ["ZZZ"])


def test_sampler_params_refuse_unbound_parameters() -> None:
    circuit = QuantumCircuit(1)
    circuit.rx(Parameter("theta"), 0)
    circuit.measure_all()

    with pytest.raises(CircuitError, match="number of parameters"):
        sampler_params([circuit])


def test_params_round_trip_through_the_decoder() -> None:
    params = sampler_params([bell()], shots=100)

    decoded = json.loads(json.dumps(params), cls=RuntimeDecoder)

    assert decoded["pubs"][0][0] == bell()
    assert decoded["pubs"][0][2] == 100
