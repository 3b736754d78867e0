"""A device's noise on a circuit's active qubits only, kept per device and active set.

`AerSimulator.from_backend` converts the whole device's noise model on every run
(qiskit-aer issue 2379): about a second for a Bell pair on 127 qubits. Here a
circuit is compacted to the qubits it uses, and the noise is built for those
qubits alone (a `Target` of them, renumbered 0..k-1), once per device and active
set, in an LRU cache of each process that runs circuits. Pure: no Django.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from qiskit import QuantumCircuit
from qiskit.converters import circuit_to_dag, dag_to_circuit
from qiskit.providers import BackendV2, Options
from qiskit.transpiler import Target
from qiskit.transpiler.passes import RemoveBarriers
from qiskit_aer import AerSimulator
from qiskit_aer.noise import NoiseModel, ReadoutError

from scheduler.devices import device as devices
from scheduler.devices.device import Device
from scheduler.devices.paulis import PauliNoise, pauli_noise

CACHE_SIZE = 64  # active sets per process; an entry is small (a few gates' errors)


@dataclass(frozen=True)
class Compacted:
    """A circuit on its active qubits: `active[i]` is the device qubit of its qubit i."""

    circuit: QuantumCircuit
    active: tuple[int, ...]


def compact(circuit: QuantumCircuit) -> Compacted:
    """`circuit` without the qubits no instruction touches (barriers do not count)."""
    dag = circuit_to_dag(RemoveBarriers()(circuit))
    idle = set(dag.idle_wires())
    index = {bit: i for i, bit in enumerate(circuit.qubits)}
    active = tuple(index[bit] for bit in circuit.qubits if bit not in idle)
    dag.remove_qubits(*(bit for bit in circuit.qubits if bit in idle))
    compacted = dag_to_circuit(dag)
    compacted.metadata = circuit.metadata
    return Compacted(compacted, active)


def restricted_target(full: Target, active: tuple[int, ...]) -> Target:
    """`full` on the `active` qubits only, renumbered in that order."""
    index = {qubit: i for i, qubit in enumerate(active)}
    qubit_properties = [full.qubit_properties[q] for q in active] if full.qubit_properties else None
    target = Target(num_qubits=len(active), dt=full.dt, qubit_properties=qubit_properties)
    for name in full.operation_names:
        entries = full[name]
        operation = full.operation_from_name(name)
        if None in entries:  # a global instruction (control flow): on any qubits
            target.add_instruction(operation, name=name)
            continue
        kept = {
            tuple(index[q] for q in qargs): props
            for qargs, props in entries.items()
            if all(q in index for q in qargs)
        }
        if kept:
            target.add_instruction(operation, kept, name=name)
    return target


class _TargetBackend(BackendV2):
    """The least `NoiseModel.from_backend` needs: a `Target` (and its `dt`)."""

    def __init__(self, target: Target) -> None:
        super().__init__(name="active qubits")
        self._target = target

    @property
    def target(self) -> Target:
        return self._target

    @property
    def max_circuits(self) -> None:
        return None

    @classmethod
    def _default_options(cls) -> Options:
        return Options()

    def run(self, run_input: Any, **options: Any) -> Any:
        raise NotImplementedError


@functools.lru_cache(maxsize=CACHE_SIZE)
def sub_target(device: Device, active: tuple[int, ...]) -> Target:
    return restricted_target(devices.target(device), active)


@functools.lru_cache(maxsize=CACHE_SIZE)
def noise_model(device: Device, active: tuple[int, ...]) -> NoiseModel:
    """Aer's device noise (depolarizing, thermal relaxation, readout) on `active`, renumbered."""
    return NoiseModel.from_backend(_TargetBackend(sub_target(device, active)))


@functools.lru_cache(maxsize=CACHE_SIZE)
def density_matrix_simulator(
    device: Device, active: tuple[int, ...], max_memory_mb: int
) -> AerSimulator:
    return AerSimulator(
        method="density_matrix",
        noise_model=noise_model(device, active),
        max_memory_mb=max_memory_mb,
    )


@functools.lru_cache(maxsize=CACHE_SIZE)
def numbered_noise_model(device: Device, active: tuple[int, ...]) -> NoiseModel:
    """Aer's device noise on `active` only, with the device's own qubit numbers (for
    circuits Aer runs whole: it leaves out the qubits they do not use)."""
    full = devices.target(device)
    kept = set(active)
    target = Target(num_qubits=full.num_qubits, dt=full.dt, qubit_properties=full.qubit_properties)
    for name in full.operation_names:
        entries = full[name]
        if None in entries:
            target.add_instruction(full.operation_from_name(name), name=name)
            continue
        on_active = {q: p for q, p in entries.items() if set(q) <= kept}
        if on_active:
            target.add_instruction(full.operation_from_name(name), on_active, name=name)
    return NoiseModel.from_backend(_TargetBackend(target))


@functools.lru_cache(maxsize=CACHE_SIZE)
def paulis(device: Device, active: tuple[int, ...]) -> PauliNoise:
    """The Pauli form of the device's noise on `active`, renumbered."""
    return pauli_noise(sub_target(device, active))


@functools.lru_cache(maxsize=CACHE_SIZE)
def readout_simulator(device: Device, active: tuple[int, ...], max_memory_mb: int) -> AerSimulator:
    """A statevector simulator whose only noise is the readout error of `active`: circuits
    with Pauli errors drawn in run on it, their measurements still sampled in one pass."""
    model = NoiseModel()
    for i, error in enumerate(paulis(device, active).readout):
        if error > 0:
            probabilities = [[1 - error, error], [error, 1 - error]]
            model.add_readout_error(ReadoutError(probabilities), [i])
    return AerSimulator(method="statevector", noise_model=model, max_memory_mb=max_memory_mb)


def statevector_bytes(num_qubits: int) -> float:
    return 16 * math.pow(2, num_qubits)


def clear() -> None:
    """Forget every cached device and active set (tests, benchmarks)."""
    for cached in (
        sub_target,
        noise_model,
        numbered_noise_model,
        density_matrix_simulator,
        paulis,
        readout_simulator,
    ):
        cached.cache_clear()
    devices.target.cache_clear()
