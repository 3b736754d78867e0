"""Results of the `executor` program in the wire format the client decodes, made by the
client's own local implementation (`fake_provider`'s `run_quantum_program`) on Aer and
encoded as the `v2.0` `QuantumProgramResultModel`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ibm_quantum_schemas.common.tensor import CompressedTensorModel
from ibm_quantum_schemas.executor.version_2_0 import models as schema
from qiskit import QuantumCircuit
from qiskit_aer import AerSimulator
from qiskit_ibm_runtime.executor_estimator import Estimator
from qiskit_ibm_runtime.executor_estimator.prepare import prepare as estimator_prepare
from qiskit_ibm_runtime.executor_sampler import Sampler
from qiskit_ibm_runtime.executor_sampler.prepare import prepare as sampler_prepare
from qiskit_ibm_runtime.fake_provider.executor.run_quantum_program import run_quantum_program
from qiskit_ibm_runtime.options_models.simulator import SimulatorOptions
from qiskit_ibm_runtime.quantum_program import QuantumProgram
from qiskit_ibm_runtime.quantum_program.converters.converters_2_0 import passthrough_data_to_2_0


def program_result(program: QuantumProgram, *, seed: int = 7) -> str:
    """Run `program` on Aer as the client's local service does; its result as wire JSON."""
    backend = AerSimulator()
    result = run_quantum_program(backend, program, SimulatorOptions(seed_simulator=seed))
    model = schema.QuantumProgramResultModel(
        data=[
            schema.QuantumProgramResultItemModel(
                results={
                    name: CompressedTensorModel.from_numpy(np.asarray(value))
                    for name, value in item.items()
                },
                metadata=schema.ItemMetadataModel(),
            )
            for item in result
        ],
        metadata=schema.MetadataModel(chunk_timing=[]),
        passthrough_data=passthrough_data_to_2_0(result.passthrough_data),
        semantic_role=getattr(result, "_semantic_role", None),
    )
    return model.model_dump_json()


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
