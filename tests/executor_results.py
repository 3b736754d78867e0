"""The `executor` program's params as the client sends them, and its results as qdash's
executor answers them (the client's own `run_quantum_program` on Aer, encoded as the
`v2.0` `QuantumProgramResultModel`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qiskit import QuantumCircuit
from qiskit_aer import AerSimulator
from qiskit_ibm_runtime.executor_estimator import Estimator
from qiskit_ibm_runtime.executor_estimator.prepare import prepare as estimator_prepare
from qiskit_ibm_runtime.executor_sampler import Sampler
from qiskit_ibm_runtime.executor_sampler.prepare import prepare as sampler_prepare
from qiskit_ibm_runtime.options_models.executor import ExecutorOptions
from qiskit_ibm_runtime.quantum_program import QuantumProgram
from qiskit_ibm_runtime.quantum_program.params_converters import (
    QUANTUM_PROGRAM_PARAMS_CONVERTERS,
)

from scheduler.executor import execute


def program_params(program: QuantumProgram) -> dict[str, Any]:
    """The `params` the client's `Executor.run(program)` sends."""
    converter = QUANTUM_PROGRAM_PARAMS_CONVERTERS["v2.0"]
    params: dict[str, Any] = converter.encoder(program, ExecutorOptions()).model_dump(mode="json")
    return params


def program_result(program: QuantumProgram) -> str:
    """What qdash's executor answers for `program`: the client's v2.0 result JSON."""
    return execute("executor", program_params(program))


def sampler_result(circuits: Sequence[QuantumCircuit], shots: int) -> str:
    """What the executor returns for the client-side `Sampler(...).run(circuits, shots=...)`."""
    backend = AerSimulator()
    sampler: Any = Sampler(mode=backend)
    program, _ = sampler_prepare(circuits, sampler.options, shots, backend=backend)
    program._semantic_role = "sampler_v2"
    return program_result(program)


def estimator_result(pubs: Sequence[Any], precision: float | None = None) -> str:
    """What the executor returns for the client-side `Estimator(...).run(pubs)`."""
    backend = AerSimulator()
    estimator: Any = Estimator(mode=backend)
    program, _ = estimator_prepare(pubs, estimator.options, precision, backend=backend)
    program._semantic_role = "estimator_v2"
    return program_result(program)


def circuit_program(circuit: QuantumCircuit, shots: int) -> QuantumProgram:
    """A plain program of one circuit item, as `Executor(...).run(program)` takes it."""
    program = QuantumProgram(shots=shots)
    program.append_circuit_item(circuit)
    return program
