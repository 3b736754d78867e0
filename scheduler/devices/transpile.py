"""The submission form's "transpile for the device": OpenQASM to an ISA circuit.

Runs in the decoding sandbox, like `circuits.qasm_params`. Pure: no Django.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import generate_preset_pass_manager

from scheduler import circuits
from scheduler.circuits import CircuitError, Limits
from scheduler.devices import device as devices
from scheduler.devices.device import Device

OPTIMIZATION_LEVEL = 1


@dataclass(frozen=True)
class Transpiled:
    params: dict[str, Any]
    depth: int
    two_qubit_gates: int
    qubits: tuple[int, ...]  # the device qubits the circuit's qubits landed on

    def summary(self, backend: str) -> str:
        gates = f"{self.two_qubit_gates} two-qubit gate{'s' if self.two_qubit_gates != 1 else ''}"
        on = ", ".join(str(q) for q in self.qubits)
        return f"Transpiled for {backend}: depth {self.depth}, {gates}, on qubits {on}."


def qasm_params(
    program_id: str,
    text: str,
    *,
    shots: int | None,
    precision: float | None,
    observables: str,
    limits: Limits,
    device: Device,
) -> Transpiled:
    """The browser form's job, its circuit transpiled for `device` (observables follow the
    layout); the same checks as `circuits.qasm_params`."""
    target = devices.target(device)
    circuits.check_declarations(
        text,
        qubits=min(limits.qubits, target.num_qubits),
        clbits=limits.clbits,
        chars=limits.qasm_chars,
    )
    circuit = circuits.parse_qasm(text)
    circuits.check_size(circuit, limits)
    wanted: list[str] = []
    if program_id == circuits.ESTIMATOR:
        try:
            wanted = circuits.parse_observables(observables, circuit.num_qubits)
        except CircuitError as error:
            raise CircuitError(error.message, field="observables") from None
    manager = generate_preset_pass_manager(
        optimization_level=OPTIMIZATION_LEVEL, target=target, seed_transpiler=11
    )
    try:
        isa = manager.run(circuit)
    except Exception as error:  # the transpiler names what it could not map
        raise CircuitError(f"cannot transpile for the device: {circuits.one_line(error)}") from None
    laid_out = [SparsePauliOp(label).apply_layout(isa.layout) for label in wanted]
    params = circuits.primitive_params(
        program_id,
        isa,
        shots=shots,
        precision=precision,
        observables=laid_out,
    )
    inspection = circuits.inspect(program_id, params, limits)
    circuits.check_width(inspection, target.num_qubits)
    layout = isa.layout.final_index_layout() if isa.layout is not None else []
    return Transpiled(
        params=params,
        depth=isa.depth(lambda instruction: instruction.operation.name != "barrier"),
        two_qubit_gates=isa.num_nonlocal_gates(),
        qubits=tuple(layout),
    )
