"""The `executor` program: checking a QuantumProgram, running it on Aer, encoding its result."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter
from qiskit_ibm_runtime.decoders.executor.decoder import ExecutorResultDecoder
from qiskit_ibm_runtime.quantum_program import QuantumProgram

from scheduler import circuits, quantum_programs
from scheduler.circuits import CircuitError, Limits
from scheduler.executor import ExecutionError, execute
from tests.executor_results import program_params
from tests.test_executor import bell


def bell_program(shots: int = 1000) -> QuantumProgram:
    program = QuantumProgram(shots=shots)
    program.append_circuit_item(bell())
    return program


def rotation_program() -> QuantumProgram:
    """One circuit item bound to three angles: 0, pi and pi/2 about X."""
    theta = Parameter("theta")
    circuit = QuantumCircuit(1)
    circuit.rx(theta, 0)
    circuit.measure_all()
    program = QuantumProgram(shots=400)
    program.append_circuit_item(circuit, circuit_arguments=np.array([[0.0], [np.pi], [np.pi / 2]]))
    return program


def test_inspection_counts_shots_times_item_elements() -> None:
    inspection = circuits.inspect("executor", program_params(rotation_program()), Limits())
    assert inspection == circuits.Inspection(num_qubits=1, executions=3 * 400)
    bell_inspection = circuits.inspect("executor", program_params(bell_program(250)), Limits())
    assert bell_inspection == circuits.Inspection(num_qubits=2, executions=250)


def _unmeasured() -> dict:
    program = QuantumProgram(shots=10)
    circuit = QuantumCircuit(2)
    circuit.h(0)
    program.append_circuit_item(circuit)
    return program_params(program)


def _with(change: dict) -> dict:
    params = program_params(bell_program())
    params["quantum_program"] = {**params["quantum_program"], **change}
    return params


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("x", "params must be an object"),
        ({"pubs": []}, "unsupported executor params schema_version None"),
        ({**program_params(bell_program()), "schema_version": "v9.9"}, "schema_version 'v9.9'"),
        (_with({"shots": 0}), "quantum_program.shots"),
        (_with({"shots": 10**9}), "1000000000 shots; at most 100000"),
        (_with({"circuits": {"b64_data": "bm90IHFweQ==", "num_programs": 1}}), "circuits"),
        (_with({"items": []}), "There must be exactly one circuit for every program item"),
        (_with({"meas_level": "kerneled"}), "meas_level 'kerneled' is not supported"),
        (_with({"items": _with({})["quantum_program"]["items"] * 101}), "101 items; at most 100"),
        (_unmeasured(), "item 0: the circuit has no classical register"),
    ],
)
def test_bad_programs_are_refused_with_a_reason(params: object, message: str) -> None:
    with pytest.raises(CircuitError, match=message.replace("(", r"\(")):
        circuits.inspect("executor", params, Limits())


def test_too_many_executions_are_refused() -> None:
    with pytest.raises(CircuitError, match="1200 executions"):
        circuits.inspect("executor", program_params(rotation_program()), Limits(executions=1000))


def test_a_program_runs_on_aer_in_the_clients_result_format() -> None:
    text = execute("executor", program_params(rotation_program()))
    result = ExecutorResultDecoder.decode(text)
    bits = result[0]["meas"]
    assert bits.shape == (3, 400, 1) and bits.dtype == bool
    assert not bits[0].any() and bits[1].all()  # rx(0) reads 0, rx(pi) reads 1
    assert 120 < bits[2].sum() < 280  # rx(pi/2): about half
    (span,) = result.metadata.chunk_timing
    assert span.start <= span.stop


def test_a_bell_program_reads_00_and_11_about_equally() -> None:
    bits = ExecutorResultDecoder.decode(execute("executor", program_params(bell_program())))[0]
    ones = bits["meas"].sum(axis=1)
    assert set(ones.tolist()) <= {0, 2} and 400 < (ones == 0).sum() < 600


def test_a_program_that_cannot_be_decoded_fails_the_job() -> None:
    with pytest.raises(ExecutionError, match="schema_version"):
        execute("executor", {"quantum_program": {}})


def test_the_passthrough_data_and_semantic_role_come_back() -> None:
    program = bell_program(10)
    program.passthrough_data = {"post_processor": {"version": "v0.1"}, "weights": np.ones(3)}
    program._semantic_role = "sampler-v2"
    result = ExecutorResultDecoder.decode(
        quantum_programs.run(
            quantum_programs.decode_program(program_params(program)),
            backend_options={"method": "automatic"},
        )
    )
    assert result._semantic_role == "sampler-v2"
    assert result.passthrough_data["post_processor"] == {"version": "v0.1"}
    assert np.array_equal(result.passthrough_data["weights"], np.ones(3))
