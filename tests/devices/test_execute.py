"""Jobs on a device: its noise on the active qubits, the method by size, drivers."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.primitives.containers import EstimatorPub, ObservablesArray
from qiskit.quantum_info import SparsePauliOp
from qiskit_ibm_runtime import RuntimeDecoder
from qiskit_ibm_runtime.decoders.executor.decoder import ExecutorResultDecoder
from qiskit_ibm_runtime.quantum_program import QuantumProgram

from scheduler import circuits
from scheduler.devices import execute as device_execute
from scheduler.devices import noise
from scheduler.devices.device import Device
from scheduler.executor import execute
from tests.devices.circuits import FEZ, KYIV, isa
from tests.devices.tiny_backend import TINY_PATH
from tests.executor_results import program_params

MEMORY = 4096


def run(device: Device, program: str, params: dict[str, Any]) -> Any:
    return json.loads(
        execute(program, params, max_memory_mb=MEMORY, device=device), cls=RuntimeDecoder
    )


def sample(device: Device, circuit: QuantumCircuit, shots: int = 4000, **options: Any) -> Any:
    params = circuits.sampler_params([circuit], shots)
    params["options"] = options
    return run(device, "sampler", params)[0]


def good(counts: dict[str, int], width: int) -> float:
    return (counts.get("0" * width, 0) + counts.get("1" * width, 0)) / sum(counts.values())


def test_a_circuit_is_compacted_to_the_qubits_it_uses() -> None:
    circuit = QuantumCircuit(127, 2)
    circuit.barrier()
    circuit.sx(9)
    circuit.ecr(9, 8)
    circuit.measure([8, 9], [1, 0])
    compacted = noise.compact(circuit)
    assert compacted.active == (8, 9)
    assert compacted.circuit.num_qubits == 2 and compacted.circuit.num_clbits == 2
    assert [i.operation.name for i in compacted.circuit.data] == ["sx", "ecr", "measure", "measure"]
    assert [compacted.circuit.find_bit(q).index for q in compacted.circuit.data[1].qubits] == [1, 0]


def test_the_noise_of_an_active_set_is_built_once_and_kept() -> None:
    active = isa(KYIV, "bell").layout.final_index_layout()
    key = tuple(sorted(active))
    assert noise.noise_model(KYIV, key) is noise.noise_model(KYIV, key)
    small = noise.sub_target(KYIV, key)
    assert small.num_qubits == 2 and len(small["ecr"]) == 1


@pytest.mark.parametrize("device", [KYIV, FEZ])
def test_a_bell_pair_shows_the_devices_noise_on_its_active_qubits(device: Device) -> None:
    circuit = isa(device, "bell")
    result = sample(device, circuit)
    counts = result.data.meas.get_counts()
    assert good(counts, 2) >= 0.8 and (counts.get("01", 0) + counts.get("10", 0)) > 0
    simulation = result.metadata["simulation"]
    assert simulation["method"] == "density_matrix"
    assert simulation["active_qubits"] == sorted(circuit.layout.final_index_layout())


def test_a_seeded_job_gives_the_same_counts_again() -> None:
    circuit = isa(KYIV, "bell")
    seed = {"simulator": {"seed_simulator": 5}}
    first = sample(KYIV, circuit, **seed).data.meas.get_counts()
    assert sample(KYIV, circuit, **seed).data.meas.get_counts() == first


def test_a_wide_clifford_circuit_runs_with_pauli_frames_every_shot() -> None:
    circuit = isa(KYIV, "ghz", 14)
    result = sample(KYIV, circuit, shots=3000)
    counts = result.data.meas.get_counts()
    assert result.metadata["simulation"]["method"] == "pauli_frames"
    assert sum(counts.values()) == 3000 and 0.3 < good(counts, 14) < 0.98


def test_pauli_frames_agree_with_the_density_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    circuit = isa(KYIV, "ghz", 5)
    exact = good(sample(KYIV, circuit, shots=8000).data.meas.get_counts(), 5)
    monkeypatch.setattr(device_execute, "DENSITY_MATRIX_QUBITS", 2)
    framed = sample(KYIV, circuit, shots=8000)
    assert framed.metadata["simulation"]["method"] == "pauli_frames"
    # The Pauli twirl of relaxation keeps each gate's error: the two agree closely.
    assert abs(good(framed.data.meas.get_counts(), 5) - exact) < 0.04


def test_other_circuits_past_the_density_matrix_run_noisy_trajectories(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(device_execute, "DENSITY_MATRIX_QUBITS", 2)
    circuit = isa(KYIV, "ghz", 4).copy()
    circuit.rz(0.3, circuit.layout.final_index_layout()[0])  # not Clifford: no frames
    result = sample(KYIV, circuit, shots=2000)
    simulation = result.metadata["simulation"]
    assert simulation["method"] == "trajectories" and simulation["trajectories"] == 128
    counts = result.data.meas.get_counts()
    assert sum(counts.values()) == 2000 and 0.6 < good(counts, 4) < 1.0


def test_past_the_trajectories_limit_a_circuit_runs_noiseless_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(device_execute, "DENSITY_MATRIX_QUBITS", 2)
    monkeypatch.setattr(device_execute, "TRAJECTORY_QUBITS", 3)
    circuit = isa(KYIV, "ghz", 4).copy()
    circuit.rz(0.3, circuit.layout.final_index_layout()[0])
    result = sample(KYIV, circuit, shots=1000)
    assert result.metadata["simulation"]["method"] == "noiseless"
    assert "none" in result.metadata["simulation"]["noise"]
    assert set(result.data.meas.get_counts()) == {"0000", "1111"}


def test_an_estimator_pub_sees_the_noise_and_only_its_active_qubits() -> None:
    circuit = isa(KYIV, "bell", measure=False)
    zz = SparsePauliOp("ZZ").apply_layout(circuit.layout)
    idle = next(q for q in range(127) if q not in circuit.layout.final_index_layout())
    x_idle = SparsePauliOp.from_sparse_list([("X", [idle], 1.0)], 127)
    pub = EstimatorPub.coerce((circuit, [zz, x_idle]), precision=0)
    result = run(KYIV, "estimator", circuits.pubs_params([pub]))[0]
    zz_value, x_value = result.data.evs
    assert 0.8 < zz_value < 0.999 and x_value == pytest.approx(0, abs=1e-12)
    assert result.metadata["simulation"]["method"] == "density_matrix"


def test_observables_are_restricted_to_the_active_qubits() -> None:
    # Labels put qubit 0 last: "ZIXZ" is Z on 3, X on 1, Z on 0.
    observables = ObservablesArray([{"ZIXZ": 1.0, "IIIX": 2.0}, {"IXII": 3.0}])
    restricted, vanishing = device_execute.restrict_observables(observables, (1, 3), 4)
    assert restricted.tolist() == [{"ZX": 1.0}, {"II": 1.0}]
    assert vanishing.tolist() == [False, True]


def test_a_program_of_the_executor_runs_with_the_devices_noise() -> None:
    program = QuantumProgram(shots=2000)
    program.append_circuit_item(isa(KYIV, "bell"))
    text = execute("executor", program_params(program), max_memory_mb=MEMORY, device=KYIV)
    bits = ExecutorResultDecoder.decode(text)[0]["meas"]
    ones = bits.sum(axis=1)
    assert (ones == 1).sum() > 0 and np.isin(ones, [0, 2]).mean() >= 0.8


def test_a_drivers_jobs_run_on_the_driver_itself() -> None:
    driver = Device(driver=TINY_PATH, args=json.dumps({"cx_error": 0.2}))
    circuit = QuantumCircuit(3)
    circuit.sx(0)
    circuit.sx(0)  # an X, made of the driver's gates
    circuit.cx(0, 1)
    circuit.measure_all()
    counts = sample(driver, circuit, shots=2000).data.meas.get_counts()
    assert counts.get("011", 0) > 1200 and len(counts) > 2  # its 20% CX error shows
