"""Submission checks on a device: the ISA check with IBM's sentence, structures, shot time."""

from __future__ import annotations

import pytest
from qiskit import QuantumCircuit
from qiskit.circuit import Parameter

from scheduler import circuits
from scheduler.circuits import CircuitError, Limits
from scheduler.devices import checks
from scheduler.devices.device import target
from tests.devices.circuits import FEZ, KYIV, isa


def wide(num_qubits: int) -> QuantumCircuit:
    return QuantumCircuit(num_qubits, 1)


def refusal(circuit: QuantumCircuit, device=KYIV) -> str:  # type: ignore[no-untyped-def]
    if not circuit.cregs:
        circuit.measure_all()
    params = circuits.sampler_params([circuit], 100)
    with pytest.raises(CircuitError) as raised:
        checks.inspect("sampler", params, Limits(), device)
    return str(raised.value)


def test_a_gate_the_device_lacks_is_refused_with_ibms_sentence() -> None:
    circuit = QuantumCircuit(127)
    circuit.h(0)
    message = refusal(circuit)
    assert message.startswith(
        "pub 0: The instruction h on qubits (0,) is not supported by the target system."
    )
    assert "no longer supported after March 4, 2024" in message


def test_a_two_qubit_gate_on_an_uncoupled_pair_or_the_wrong_way_is_refused() -> None:
    pairs = set(target(KYIV)["ecr"])
    a, b = next(iter(pairs))
    assert (b, a) not in pairs  # ECR runs one way on an Eagle
    backwards = QuantumCircuit(127)
    backwards.ecr(b, a)
    assert f"The instruction ecr on qubits ({b}, {a}) is not supported" in refusal(backwards)
    far = QuantumCircuit(127)
    far.ecr(0, 100)
    assert "The instruction ecr on qubits (0, 100) is not supported" in refusal(far)


def test_a_circuit_wider_than_the_device_is_refused() -> None:
    assert "The circuit has 157 qubits but the target system requires 156" in refusal(
        wide(157), FEZ
    )


def test_a_transpiled_circuit_passes_with_its_structure_and_shot_time() -> None:
    bell = isa(KYIV, "bell")
    params = circuits.sampler_params([bell, bell], 1000)
    checked = checks.inspect("sampler", params, Limits(), KYIV)
    first, second = checked.runs
    assert first.key == second.key and first.executions == 1000
    # rz is virtual: the shot is the path through sx, ecr and the measurement.
    measure = max(target(KYIV)["measure"][(q,)].duration for q in bell.layout.final_index_layout())
    assert measure < first.shot_seconds < measure + 3e-6


def test_an_ideal_backend_takes_any_gate_and_charges_no_device_time() -> None:
    circuit = QuantumCircuit(2, 2)
    circuit.h(0)
    circuit.measure([0, 1], [0, 1])
    checked = checks.inspect("sampler", circuits.sampler_params([circuit], 10), Limits(), None)
    assert checked.runs[0].shot_seconds == 0 and checked.inspection.executions == 10


def test_a_structure_is_the_same_for_any_parameter_values_but_not_for_another_angle() -> None:
    theta = Parameter("θ")
    circuit = QuantumCircuit(1, 1)
    circuit.rz(theta, 0)
    circuit.measure(0, 0)
    assert checks.structure_key(circuit) == checks.structure_key(circuit.copy())
    bound = [circuit.assign_parameters([value]) for value in (0.1, 0.2)]
    assert checks.structure_key(bound[0]) != checks.structure_key(bound[1])
    assert checks.structure_key(bound[0]) != checks.structure_key(circuit)


def test_a_loops_body_counts_once_per_iteration_in_the_shot_time() -> None:
    sx = target(KYIV)["sx"][(5,)].duration
    measure = target(KYIV)["measure"][(5,)].duration
    circuit = QuantumCircuit(127, 1)
    with circuit.for_loop(range(3)):
        circuit.sx(5)
    circuit.measure(5, 0)
    assert checks.shot_seconds(circuit, target(KYIV)) == pytest.approx(3 * sx + measure)
