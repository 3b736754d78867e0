"""Running a job on a device backend: a profile's noise at speed, or a driver.

A profile's PUB runs on its active qubits only (`scheduler.devices.noise`), by a
method chosen from their number:

- up to `DENSITY_MATRIX_QUBITS`: Aer's density matrix with the device's noise
  (depolarizing, thermal relaxation, readout), exact;
- above, a Clifford circuit: Pauli frames with the Pauli form of that noise
  (`scheduler.devices.paulis`), every shot, at any width;
- above, any other circuit: noisy trajectories (Pauli errors drawn into copies of
  the circuit, each sampled for a share of the shots) while a statevector of its
  active qubits fits the memory cap and `TRAJECTORY_QUBITS`;
- beyond: noiseless.

Each PUB's result metadata says which (`simulation`). A driver's jobs run through
Qiskit's `BackendSamplerV2` and `BackendEstimatorV2` on the driver itself. Pure: no
Django; runs in the executors' child processes.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.primitives import BackendEstimatorV2, BackendSamplerV2, PrimitiveResult
from qiskit.primitives.containers import (
    BitArray,
    DataBin,
    EstimatorPub,
    ObservablesArray,
    PubResult,
    SamplerPub,
    SamplerPubResult,
)
from qiskit_aer import AerSimulator
from qiskit_aer.primitives import EstimatorV2 as AerEstimator
from qiskit_aer.primitives import SamplerV2 as AerSampler
from qiskit_ibm_runtime import RuntimeEncoder

from scheduler import quantum_programs
from scheduler.circuits import (
    EXECUTOR,
    SAMPLER,
    CircuitError,
    RunDefaults,
    decode_pubs,
    precision_shots,
    run_defaults,
)
from scheduler.devices import DeviceUnavailable, drivers, noise
from scheduler.devices.device import Device
from scheduler.devices.paulis import frame_flips, is_clifford, trajectory

DENSITY_MATRIX_QUBITS = 10  # 4^k amplitudes: 10 qubits take ~0.5 s a run, 12 take ~5 s
TRAJECTORY_QUBITS = 24  # past this, trajectories of a general circuit take minutes
MAX_TRAJECTORIES = 128
MIN_TRAJECTORIES = 8
TRAJECTORY_WORK = 2**32  # amplitudes times instructions over all trajectories of a PUB

DENSITY_MATRIX = "density_matrix"
PAULI_FRAMES = "pauli_frames"
TRAJECTORIES = "trajectories"
NOISELESS = "noiseless"
NOISE = {
    DENSITY_MATRIX: "device noise: depolarizing, thermal relaxation, readout",
    PAULI_FRAMES: "device noise, Pauli-twirled: depolarizing, relaxation, readout",
    TRAJECTORIES: "device noise, Pauli-twirled: depolarizing, relaxation, readout",
    NOISELESS: "none: no active qubits, or too many for a noisy method",
}


class DeviceExecutionError(Exception):
    """The job cannot run on its device; the message is one line for the user."""


def execute(program_id: str, params: dict[str, Any], *, max_memory_mb: int, device: Device) -> str:
    """Run a job on `device`: the result as the client's JSON, as `scheduler.executor.execute`."""
    try:
        if device.driver:
            return _through_driver(program_id, params, device)
        if program_id == EXECUTOR:
            return _program_on_profile(params, device, max_memory_mb)
        pubs = decode_pubs(program_id, params)
        defaults = run_defaults(program_id, params)
    except CircuitError as error:
        raise DeviceExecutionError(str(error)) from error
    except DeviceUnavailable as error:
        raise DeviceExecutionError(f"the backend's device is unavailable: {error}") from error
    rng = np.random.default_rng(defaults.seed)
    results: list[PubResult] = []
    for pub in pubs:
        if program_id == SAMPLER:
            assert isinstance(pub, SamplerPub)
            results.append(_sample(pub, defaults, device, max_memory_mb, rng))
        else:
            assert isinstance(pub, EstimatorPub)
            results.append(_estimate(pub, defaults, device, max_memory_mb, rng))
    return json.dumps(PrimitiveResult(results, metadata={"version": 2}), cls=RuntimeEncoder)


def choose_method(circuit: QuantumCircuit, *, estimator: bool, max_memory_mb: int) -> str:
    """The method for a circuit already compacted to its active qubits."""
    k = circuit.num_qubits
    if k == 0:  # nothing to simulate: no noise to add
        return NOISELESS
    if k <= DENSITY_MATRIX_QUBITS:
        return DENSITY_MATRIX
    clifford = not circuit.parameters and is_clifford(circuit)
    if clifford:  # frames sample it; an estimator's trajectories run on Aer's stabilizer
        return TRAJECTORIES if estimator else PAULI_FRAMES
    fits = noise.statevector_bytes(k) <= max_memory_mb * 2**20
    return TRAJECTORIES if fits and k <= TRAJECTORY_QUBITS else NOISELESS


def trajectories(circuit: QuantumCircuit, shots: int) -> int:
    """How many trajectories a PUB of `shots` gets: as many as the work allows, 8 to 128."""
    work = math.pow(2, circuit.num_qubits) * max(1, circuit.size())
    return max(1, min(shots, MAX_TRAJECTORIES, max(MIN_TRAJECTORIES, int(TRAJECTORY_WORK / work))))


def _simulation(method: str, active: tuple[int, ...], runs: int | None = None) -> dict[str, Any]:
    info: dict[str, Any] = {"method": method, "noise": NOISE[method], "active_qubits": list(active)}
    if runs is not None:
        info["trajectories"] = runs
    return info


# ------------------------------------------------------------------------ sampler
def _sample(
    pub: SamplerPub,
    defaults: RunDefaults,
    device: Device,
    max_memory_mb: int,
    rng: np.random.Generator,
) -> SamplerPubResult:
    shots = pub.shots or defaults.shots
    compacted = noise.compact(pub.circuit)
    circuit, active = compacted.circuit, compacted.active
    method = choose_method(circuit, estimator=False, max_memory_mb=max_memory_mb)
    runs = None
    if method == DENSITY_MATRIX:
        simulator = noise.density_matrix_simulator(device, active, max_memory_mb)
        data = _aer_sample(simulator, SamplerPub(circuit, pub.parameter_values, shots), defaults)
    elif method == PAULI_FRAMES:
        data = _frames_sample(circuit, device, active, shots, defaults, rng)
    elif method == TRAJECTORIES:
        runs = trajectories(circuit, shots)
        simulator = noise.readout_simulator(device, active, max_memory_mb)
        data = _trajectories_sample(circuit, pub, simulator, device, active, shots, runs, rng)
    else:
        simulator = AerSimulator(method="automatic", max_memory_mb=max_memory_mb)
        data = _aer_sample(simulator, SamplerPub(circuit, pub.parameter_values, shots), defaults)
    metadata = {
        "shots": shots,
        "circuit_metadata": pub.circuit.metadata,
        "simulation": _simulation(method, active, runs),
    }
    return SamplerPubResult(data, metadata=metadata)


def _aer_sample(simulator: AerSimulator, pub: SamplerPub, defaults: RunDefaults) -> DataBin:
    sampler = AerSampler.from_backend(simulator, default_shots=pub.shots, seed=defaults.seed)
    return sampler.run([pub]).result()[0].data


def _frames_sample(
    circuit: QuantumCircuit,
    device: Device,
    active: tuple[int, ...],
    shots: int,
    defaults: RunDefaults,
    rng: np.random.Generator,
) -> DataBin:
    reference = AerSimulator(method="stabilizer").run(
        circuit, shots=1, memory=True, seed_simulator=defaults.seed
    )
    bits = _memory_bits(reference.result().get_memory(0)[0], circuit)
    samples = bits[None, :] ^ frame_flips(circuit, noise.paulis(device, active), shots, rng)
    return _registers(circuit, samples)


def _trajectories_sample(
    circuit: QuantumCircuit,
    pub: SamplerPub,
    simulator: AerSimulator,
    device: Device,
    active: tuple[int, ...],
    shots: int,
    runs: int,
    rng: np.random.Generator,
) -> DataBin:
    pauli = noise.paulis(device, active)
    each = math.ceil(shots / runs)
    pubs = [
        SamplerPub(trajectory(circuit, pauli, rng), pub.parameter_values, each) for _ in range(runs)
    ]
    seed = int(rng.integers(2**31))
    results = AerSampler.from_backend(simulator, seed=seed).run(pubs).result()
    fields = {}
    for creg in circuit.cregs:
        joined = BitArray.concatenate_shots([result.data[creg.name] for result in results])
        fields[creg.name] = joined.slice_shots(range(shots))
    return DataBin(**fields, shape=pub.parameter_values.shape)


def _memory_bits(memory: str, circuit: QuantumCircuit) -> np.ndarray:
    """One shot of Aer's memory ("c1 c0", each register's bit 0 rightmost) as a vector of
    the circuit's classical bits."""
    bits = np.zeros(circuit.num_clbits, dtype=bool)
    for creg, word in zip(circuit.cregs, reversed(memory.split()), strict=True):
        for position, bit in enumerate(creg):
            bits[circuit.find_bit(bit).index] = word[-1 - position] == "1"
    return bits


def _registers(circuit: QuantumCircuit, samples: np.ndarray) -> DataBin:
    """Shots of all classical bits (shots × clbits) as one `BitArray` per register."""
    fields = {}
    for creg in circuit.cregs:
        columns = [circuit.find_bit(bit).index for bit in creg]
        fields[creg.name] = BitArray.from_bool_array(samples[:, columns], order="little")
    return DataBin(**fields)


# ---------------------------------------------------------------------- estimator
def _estimate(
    pub: EstimatorPub,
    defaults: RunDefaults,
    device: Device,
    max_memory_mb: int,
    rng: np.random.Generator,
) -> PubResult:
    precision = defaults.precision if pub.precision is None else pub.precision
    compacted = noise.compact(pub.circuit)
    circuit, active = compacted.circuit, compacted.active
    observables, vanishing = restrict_observables(pub.observables, active, pub.circuit.num_qubits)
    method = choose_method(circuit, estimator=True, max_memory_mb=max_memory_mb)
    runs = None
    small = EstimatorPub(circuit, observables, pub.parameter_values, precision)
    options: dict[str, Any] = {
        "default_precision": precision,
        "run_options": {} if defaults.seed is None else {"seed_simulator": defaults.seed},
    }
    if method == DENSITY_MATRIX:
        simulator = noise.density_matrix_simulator(device, active, max_memory_mb)
        data = AerEstimator.from_backend(simulator, options=options).run([small]).result()[0].data
    elif method == TRAJECTORIES:
        runs = trajectories(circuit, precision_shots(precision))
        data = _trajectories_estimate(small, device, active, runs, precision, rng, max_memory_mb)
    else:
        simulator = AerSimulator(method="automatic", max_memory_mb=max_memory_mb)
        data = AerEstimator.from_backend(simulator, options=options).run([small]).result()[0].data
    data = _zero_where(data, vanishing)
    metadata = {
        "target_precision": precision,
        "shots": precision_shots(precision),
        "circuit_metadata": pub.circuit.metadata,
        "simulation": _simulation(method, active, runs),
    }
    return PubResult(data, metadata=metadata)


def _zero_where(data: DataBin, vanishing: np.ndarray) -> DataBin:
    """Observables that vanish on the active qubits ran as the identity: their value is
    what was read minus 1 (the estimate's noise stays)."""
    if not vanishing.any():
        return data
    evs = np.array(data.evs, dtype=float)
    mask = np.broadcast_to(vanishing, evs.shape)
    evs[mask] -= 1.0
    return DataBin(evs=evs, stds=data.stds, shape=data.shape)


def _trajectories_estimate(
    pub: EstimatorPub,
    device: Device,
    active: tuple[int, ...],
    runs: int,
    precision: float,
    rng: np.random.Generator,
    max_memory_mb: int,
) -> DataBin:
    """Exact expectation values of each trajectory, averaged; then the estimate's noise."""
    pauli = noise.paulis(device, active)
    pubs = [
        EstimatorPub(trajectory(pub.circuit, pauli, rng), pub.observables, pub.parameter_values, 0)
        for _ in range(runs)
    ]
    simulator = AerSimulator(method="automatic", max_memory_mb=max_memory_mb)
    estimator = AerEstimator.from_backend(simulator, options={"default_precision": 0})
    evs = np.mean([result.data.evs for result in estimator.run(pubs).result()], axis=0)
    if precision > 0:
        evs = rng.normal(evs, precision)
    stds = np.full(np.shape(evs), precision)
    return DataBin(evs=evs, stds=stds, shape=np.shape(evs))


def restrict_observables(
    observables: ObservablesArray, active: tuple[int, ...], num_qubits: int
) -> tuple[ObservablesArray, np.ndarray]:
    """Observables of the whole device on its `active` qubits only, and which of them
    vanish there. An idle qubit stays in |0>: a Z or I there is 1, an X or Y makes the
    term's expectation 0. A vanishing observable is given as the identity (an empty one is
    not allowed), to be read as its value minus 1."""
    position = [num_qubits - 1 - q for q in reversed(active)]  # label index of each, high first
    kept = set(active)
    idle = [i for i in range(num_qubits) if num_qubits - 1 - i not in kept]
    flat = observables.ravel().tolist()
    width = max(1, len(active))
    restricted = np.empty(len(flat), dtype=object)
    vanishing = np.zeros(len(flat), dtype=bool)
    for index, observable in enumerate(flat):
        terms: dict[str, float] = {}
        for label, coeff in observable.items():
            if any(label[i] in "XY" for i in idle):
                continue
            small = "".join(label[i] for i in position) or "I"
            terms[small] = terms.get(small, 0.0) + coeff
        terms = {label: coeff for label, coeff in terms.items() if coeff != 0}
        vanishing[index] = not terms
        restricted[index] = terms or {"I" * width: 1.0}
    shape = observables.shape
    return ObservablesArray(restricted.reshape(shape), num_qubits=width), vanishing.reshape(shape)


# ----------------------------------------------------------------- executor programs
def _program_on_profile(params: dict[str, Any], device: Device, max_memory_mb: int) -> str:
    """A `QuantumProgram` on the device's noise: Aer keeps only the qubits its circuits use,
    and the noise covers those qubits (density matrix up to `DENSITY_MATRIX_QUBITS` of them;
    noiseless past that)."""
    program = quantum_programs.decode_program(params)
    active: set[int] = set()
    for item in program.items:
        active.update(noise.compact(item.circuit).active)
    options: dict[str, Any] = {"max_memory_mb": max_memory_mb}
    if active and len(active) <= DENSITY_MATRIX_QUBITS:
        options["method"] = DENSITY_MATRIX
        options["noise_model"] = noise.numbered_noise_model(device, tuple(sorted(active)))
    return quantum_programs.run(program, backend_options=options)


# ------------------------------------------------------------------------ drivers
def _through_driver(program_id: str, params: dict[str, Any], device: Device) -> str:
    """The job on the driver's own backend, through Qiskit's backend primitives."""
    backend = drivers.backend(device.driver, device.args)
    if program_id == EXECUTOR:
        from qiskit_ibm_runtime.fake_provider.executor.run_quantum_program import (
            run_quantum_program,
        )
        from qiskit_ibm_runtime.options_models.simulator import SimulatorOptions

        program = quantum_programs.decode_program(params)
        result = run_quantum_program(backend, program, SimulatorOptions())
        return quantum_programs.encode_result(result, program, started=_now(), stopped=_now())
    pubs = decode_pubs(program_id, params)
    defaults = run_defaults(program_id, params)
    seed = {} if defaults.seed is None else {"seed_simulator": defaults.seed}
    if program_id == SAMPLER:
        sampler = BackendSamplerV2(
            backend=backend, options={"default_shots": defaults.shots, **seed}
        )
        result = sampler.run(pubs).result()
    else:
        estimator = BackendEstimatorV2(
            backend=backend, options={"default_precision": defaults.precision, **seed}
        )
        result = estimator.run(pubs).result()
    return json.dumps(result, cls=RuntimeEncoder)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
