"""What a job's circuits imply on its backend's device: the ISA check, and what the
timing model charges (each circuit's structure and the duration of one of its shots).

Runs in the decoding sandbox (`scheduler.limits.decode`), after the input limits.
Pure: no Django.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from qiskit import QuantumCircuit
from qiskit.circuit import ControlFlowOp, ForLoopOp, Instruction, ParameterExpression
from qiskit.transpiler import Target
from qiskit_ibm_runtime.utils.utils import is_isa_circuit

from scheduler import circuits
from scheduler.circuits import CircuitError, Inspection, Limits
from scheduler.devices import device as devices
from scheduler.devices.device import Device

# What IBM's service adds to the reason a circuit is not ISA (the client's own words).
ISA_TAIL = (
    " Circuits that do not match the target hardware definition are no longer supported "
    "after March 4, 2024. See the transpilation documentation "
    "(https://quantum.cloud.ibm.com/docs/guides/transpile) for instructions to transform "
    "circuits and the primitive examples "
    "(https://quantum.cloud.ibm.com/docs/guides/primitives-examples) to see this coupled "
    "with operator transformations."
)


@dataclass(frozen=True)
class CircuitRun:
    """One circuit of a job as the timing model sees it."""

    key: str  # its structure: the same circuit with any parameter values has the same key
    executions: int  # shots times parameter sets (an estimator's precision counts as shots)
    shot_seconds: float  # one shot's duration on the device (0 without one)


@dataclass(frozen=True)
class Checked:
    """A job's input, checked against the limits and its device."""

    inspection: Inspection
    runs: tuple[CircuitRun, ...]


def inspect(program_id: str, params: Any, limits: Limits, device: Device | None) -> Checked:
    """Check `params` against `limits` (`circuits.inspect`), then against the device's
    instruction set; raises `CircuitError` with IBM's sentence for a circuit that is not ISA."""
    inspection = circuits.inspect(program_id, params, limits)
    target = None if device is None else devices.target(device)
    runs = []
    for index, (circuit, executions) in enumerate(_circuits(program_id, params)):
        if target is not None:
            problem = is_isa_circuit(circuit, target)
            if problem:
                where = "item" if program_id == circuits.EXECUTOR else "pub"
                raise CircuitError(f"{where} {index}: {problem}{ISA_TAIL}")
        seconds = 0.0 if target is None else shot_seconds(circuit, target)
        runs.append(CircuitRun(structure_key(circuit), executions, seconds))
    return Checked(inspection, tuple(runs))


def _circuits(program_id: str, params: Any) -> Iterable[tuple[QuantumCircuit, int]]:
    """Each circuit of the job with its executions (decoded again: the limits were checked)."""
    if program_id == circuits.EXECUTOR:
        from scheduler import quantum_programs  # heavy; loaded when first needed

        program = quantum_programs.decode_program(params)
        for item in program.items:
            yield item.circuit, program.shots * item.size()
        return
    pubs = circuits.decode_pubs(program_id, params)
    defaults = circuits.run_defaults(program_id, params)
    for pub in pubs:
        yield (
            pub.circuit,
            circuits.count_executions(program_id, [pub], defaults.shots, defaults.precision),
        )


def structure_key(circuit: QuantumCircuit) -> str:
    """A digest of the circuit's instructions with their parameters as written: the same
    circuit bound to other values in a PUB has the same key; another angle written into
    the circuit is another structure."""
    digest = hashlib.sha256(f"{circuit.num_qubits},{circuit.num_clbits}".encode())
    _feed(digest, circuit)
    return digest.hexdigest()[:32]


def _feed(digest: Any, circuit: QuantumCircuit) -> None:
    qubits = {bit: index for index, bit in enumerate(circuit.qubits)}
    clbits = {bit: index for index, bit in enumerate(circuit.clbits)}
    for instruction in circuit.data:
        operation = instruction.operation
        params = ",".join(_param_text(param) for param in operation.params)
        wires = [qubits.get(bit, -1) for bit in instruction.qubits]
        cwires = [clbits.get(bit, -1) for bit in instruction.clbits]
        digest.update(f";{operation.name}({params}){wires}{cwires}".encode())
        if isinstance(operation, ControlFlowOp):
            for block in operation.blocks:
                digest.update(b"{")
                _feed(digest, block)
                digest.update(b"}")


def _param_text(param: Any) -> str:
    if isinstance(param, ParameterExpression):
        return str(param)
    if isinstance(param, QuantumCircuit):  # a control-flow block: fed on its own
        return "block"
    if isinstance(param, float):
        return repr(round(param, 12))
    return str(param)


def shot_seconds(circuit: QuantumCircuit, target: Target) -> float:
    """The circuit's duration on the device: its longest path through the target's gate
    and readout lengths (a `for` loop's body once per iteration, an `if`'s longest branch)."""
    try:
        return _duration(circuit, target, {bit: i for i, bit in enumerate(circuit.qubits)})
    except RecursionError:
        return 0.0


def _duration(circuit: QuantumCircuit, target: Target, physical: dict[Any, int]) -> float:
    """The longest path; `physical` maps the circuit's qubits to the device's."""
    reached: dict[Any, float] = {}
    for instruction in circuit.data:
        operation = instruction.operation
        wires = (*instruction.qubits, *instruction.clbits)
        if isinstance(operation, ControlFlowOp):
            inner = []
            for block in operation.blocks:
                block_map = {
                    inner_bit: physical[outer]
                    for outer, inner_bit in zip(instruction.qubits, block.qubits, strict=False)
                }
                inner.append(_duration(block, target, block_map))
            times = _iterations(operation) if isinstance(operation, ForLoopOp) else 1
            length = times * max(inner, default=0.0)
        else:
            qargs = tuple(physical[bit] for bit in instruction.qubits)
            length = _length(operation, qargs, target)
        start = max((reached.get(wire, 0.0) for wire in wires), default=0.0)
        for wire in wires:
            reached[wire] = start + length
    return max(reached.values(), default=0.0)


def _length(operation: Instruction, qargs: tuple[int, ...], target: Target) -> float:
    if operation.name == "delay":
        return _delay_seconds(operation, target)
    if operation.name not in target.operation_names:
        return 0.0
    props = target[operation.name].get(qargs)
    return float(props.duration or 0.0) if props is not None else 0.0


def _delay_seconds(operation: Instruction, target: Target) -> float:
    value = operation.params[0] if operation.params else 0
    if isinstance(value, ParameterExpression):
        return 0.0
    unit = getattr(operation, "unit", "dt")
    scale = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12}
    if unit == "dt":
        return float(value) * float(target.dt or 0.0)
    return float(value) * scale.get(unit, 0.0)


def _iterations(loop: ForLoopOp) -> int:
    indexset = loop.params[0]
    if isinstance(indexset, range):
        return max(0, -(-(indexset.stop - indexset.start) // indexset.step))
    return len(indexset)
