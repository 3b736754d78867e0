"""Runs a started job's PUBs on Qiskit Aer and models the QPU time it holds a backend.

Pure: no Django. The engine calls `execute` for results and `modeled_duration` for the
time the backend stays busy. Aer's "automatic" method simulates Clifford circuits with
the stabilizer method (a 127-qubit GHZ is cheap) and everything else as a statevector,
which needs 16 bytes per amplitude; that is checked against the memory cap up front.
"""

from __future__ import annotations

import functools
import json
import math
import re
from datetime import timedelta
from typing import Any

from qiskit import QuantumCircuit, transpile
from qiskit.circuit import CONTROL_FLOW_OP_NAMES, ControlFlowOp
from qiskit.circuit.library import get_standard_gate_name_mapping
from qiskit.primitives import PrimitiveResult
from qiskit.primitives.containers import EstimatorPub, PubResult, SamplerPub, SamplerPubResult
from qiskit_aer import AerSimulator
from qiskit_aer.primitives import EstimatorV2, SamplerV2
from qiskit_ibm_runtime import RuntimeEncoder

from scheduler import quantum_programs
from scheduler.circuits import (
    EXECUTOR,
    SAMPLER,
    CircuitError,
    Pub,
    RunDefaults,
    decode_pubs,
    one_line,
    precision_shots,
    run_defaults,
)
from scheduler.devices.device import Device

DEFAULT_MAX_MEMORY_MB = 4096

# Instructions Aer's stabilizer method runs; a circuit of only these is Clifford
# (rz only at multiples of pi/2, which Aer checks itself).
_STABILIZER_OPS = frozenset(
    {"cx", "cy", "cz", "ecr", "h", "id", "pauli", "rz", "s", "sdg", "swap", "sx", "sxdg"}
    | {"x", "y", "z", "barrier", "measure", "reset", "delay", "store"}
)
_AER_MEMORY = re.compile(r"Required memory: (\d+)M, max memory: (\d+)M")


class ExecutionError(Exception):
    """A job's circuits could not be run; the message is one line for the user."""


def modeled_duration(*, overhead: timedelta, shot_time: timedelta, executions: int) -> timedelta:
    """The QPU time a job holds its backend: per-job overhead plus time per execution."""
    if executions < 0:
        raise ValueError("executions must not be negative")
    return overhead + executions * shot_time


def execute(
    program_id: str,
    params: dict[str, Any],
    *,
    max_memory_mb: int = DEFAULT_MAX_MEMORY_MB,
    device: Device | None = None,
) -> str:
    """Run the PUBs of `params` on Aer; the result as `RuntimeEncoder` JSON (a PrimitiveResult).

    An `executor` program's result is the client's own QuantumProgramResult JSON instead.
    A job on a device backend runs with its noise, or through its driver
    (`scheduler.devices.execute`).
    """
    if device is not None:
        return _on_device(program_id, params, max_memory_mb, device)
    if program_id == EXECUTOR:
        return _run_program(params, max_memory_mb)
    try:
        pubs = decode_pubs(program_id, params)
        defaults = run_defaults(program_id, params)
    except CircuitError as error:
        raise ExecutionError(str(error)) from error
    pubs = [_for_aer(pub) for pub in pubs]
    for pub in pubs:
        _check_memory(pub.circuit, max_memory_mb)
    backend_options = {"method": "automatic", "max_memory_mb": max_memory_mb}
    try:
        if program_id == SAMPLER:
            result = _sample(pubs, defaults, backend_options)
        else:
            result = _estimate(pubs, defaults, backend_options)
    except Exception as error:  # Aer and qiskit raise many types; the job just fails
        raise ExecutionError(_simulation_failure(error)) from error
    return json.dumps(result, cls=RuntimeEncoder)


def _on_device(program_id: str, params: dict[str, Any], max_memory_mb: int, device: Device) -> str:
    from scheduler.devices import execute as on_device

    try:
        return on_device.execute(program_id, params, max_memory_mb=max_memory_mb, device=device)
    except on_device.DeviceExecutionError as error:
        raise ExecutionError(str(error)) from error
    except Exception as error:  # Aer, the driver and qiskit raise many types; the job fails
        raise ExecutionError(_simulation_failure(error)) from error


def _run_program(params: dict[str, Any], max_memory_mb: int) -> str:
    try:
        program = quantum_programs.decode_program(params)
    except CircuitError as error:
        raise ExecutionError(str(error)) from error
    for item in program.items:
        _check_memory(item.circuit, max_memory_mb)
    backend_options = {"method": "automatic", "max_memory_mb": max_memory_mb}
    try:
        return quantum_programs.run(program, backend_options=backend_options)
    except Exception as error:  # Aer, samplomatic and qiskit raise many types; the job just fails
        raise ExecutionError(_simulation_failure(error)) from error


def _sample(pubs: list[Pub], defaults: RunDefaults, backend_options: dict) -> PrimitiveResult:
    sampler = SamplerV2(
        default_shots=defaults.shots,
        seed=defaults.seed,
        options={"backend_options": backend_options},
    )
    result = sampler.run(pubs).result()
    # Aer's simulator metadata (threads, memory) is the server's business, not the user's.
    return PrimitiveResult(
        [
            SamplerPubResult(
                pub_result.data,
                metadata={key: pub_result.metadata[key] for key in ("shots", "circuit_metadata")},
            )
            for pub_result in result
        ],
        metadata={"version": 2},
    )


def _estimate(pubs: list[Pub], defaults: RunDefaults, backend_options: dict) -> PrimitiveResult:
    run_options = {} if defaults.seed is None else {"seed_simulator": defaults.seed}
    estimator = EstimatorV2(
        options={
            "default_precision": defaults.precision,
            "backend_options": backend_options,
            "run_options": run_options,
        }
    )
    result = estimator.run(pubs).result()
    return PrimitiveResult(
        [
            PubResult(
                pub_result.data,
                metadata={
                    "target_precision": pub_result.metadata["target_precision"],
                    # As Qiskit Runtime reports it: the shots the precision stands for.
                    "shots": precision_shots(pub_result.metadata["target_precision"]),
                    "circuit_metadata": pub_result.metadata["circuit_metadata"],
                },
            )
            for pub_result in result
        ],
        metadata={"version": 2},
    )


def _for_aer(pub: Pub) -> Pub:
    """The PUB with its circuit unrolled to gates Aer knows (QASM 2 has a few it lacks)."""
    circuit = pub.circuit
    if _op_names(circuit) <= _aer_basis() | {"barrier"}:
        return pub
    try:
        circuit = transpile(circuit, basis_gates=sorted(_aer_basis()), optimization_level=0)
    except Exception as error:  # the transpiler's errors name the gate it cannot unroll
        raise ExecutionError(f"circuit cannot be simulated: {one_line(error)}") from error
    if isinstance(pub, SamplerPub):
        return SamplerPub(circuit, pub.parameter_values, pub.shots)
    return EstimatorPub(circuit, pub.observables, pub.parameter_values, pub.precision)


@functools.cache
def _aer_basis() -> frozenset[str]:
    """Aer's instructions that the transpiler also knows by name."""
    known = set(get_standard_gate_name_mapping()) | CONTROL_FLOW_OP_NAMES
    names = AerSimulator(method="statevector").configuration().basis_gates
    return frozenset(name for name in names if name in known) | {"measure"}


def _op_names(circuit: QuantumCircuit) -> set[str]:
    names = set()
    for instruction in circuit.data:
        names.add(instruction.operation.name)
        if isinstance(instruction.operation, ControlFlowOp):
            for block in instruction.operation.blocks:
                names |= _op_names(block)
    return names


def _check_memory(circuit: QuantumCircuit, max_memory_mb: int) -> None:
    """Refuse a non-Clifford circuit whose statevector exceeds the cap, before Aer starts."""
    if _maybe_clifford(circuit):
        return  # the stabilizer method's memory is small; Aer checks it itself
    needed_bytes = 16 * 2**circuit.num_qubits
    if needed_bytes > max_memory_mb * 2**20:
        raise ExecutionError(
            f"circuit too large to simulate: needs ~{_size(needed_bytes)}, cap {max_memory_mb} MB"
        )


def _maybe_clifford(circuit: QuantumCircuit) -> bool:
    for instruction in circuit.data:
        operation = instruction.operation
        if isinstance(operation, ControlFlowOp):
            if not all(_maybe_clifford(block) for block in operation.blocks):
                return False
        elif operation.name not in _STABILIZER_OPS or (
            operation.name == "rz" and not _clifford_angle(operation.params[0])
        ):
            return False
    return True


def _clifford_angle(angle: Any) -> bool:
    try:
        quarters = float(angle) / (math.pi / 2)
    except TypeError:
        return True  # an unbound parameter: Aer decides per binding
    return math.isclose(quarters, round(quarters), abs_tol=1e-9)


def _simulation_failure(error: Exception) -> str:
    memory = _AER_MEMORY.search(str(error))
    if memory:
        needed, cap = memory.groups()
        return f"circuit too large to simulate: needs ~{needed} MB, cap {cap} MB"
    if isinstance(error, MemoryError):
        return "circuit too large to simulate: the simulator ran out of memory"
    return f"simulation failed: {one_line(error)}"


def _size(nbytes: int) -> str:
    value = nbytes / 2**20
    for unit in ("MB", "GB", "TB", "PB"):
        if value < 1024:
            return f"{value:.0f} {unit}"
        value /= 1024
    return f"{value:.3g} EB"
