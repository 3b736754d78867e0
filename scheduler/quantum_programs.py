"""The `executor` program: a client's `QuantumProgram`, checked, run on Aer, its result encoded.

Pure: no Django. `qiskit-ibm-runtime`'s `Executor` (and the client-side
`executor_sampler.Sampler` and `executor_estimator.Estimator` built on it) sends
`params` in the executor's `v2.0` schema (`ibm_quantum_schemas`): one QPY blob of
circuits, and per circuit either its parameter values (a circuit item) or a
samplex that generates them, with twirling and noise injection (a samplex item).
The client decodes the answer itself, as a `QuantumProgramResult` in the same
schema; its semantic role and passthrough data tell the client-side primitives how
to post-process it. Running the program is the client's own local implementation
(`fake_provider.executor.run_quantum_program`) on an `AerSimulator`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pydantic
from ibm_quantum_schemas.common import CompressedTensorModel
from ibm_quantum_schemas.executor.version_2_0 import (
    ChunkPart,
    ChunkSpan,
    ItemMetadataModel,
    MetadataModel,
    ParamsModel,
    QuantumProgramResultItemModel,
    QuantumProgramResultModel,
)
from qiskit_aer import AerSimulator
from qiskit_ibm_runtime.fake_provider.executor.run_quantum_program import run_quantum_program
from qiskit_ibm_runtime.options_models.simulator import SimulatorOptions
from qiskit_ibm_runtime.quantum_program import QuantumProgram
from qiskit_ibm_runtime.quantum_program.converters.converters_2_0 import (
    passthrough_data_to_2_0,
    quantum_program_from_2_0,
)
from qiskit_ibm_runtime.results import QuantumProgramResult
from samplomatic.quantum_program import SamplexItem

from scheduler.circuits import CircuitError, Inspection, Limits, check_size, one_line

EXECUTOR = "executor"
SCHEMA_VERSION = "v2.0"


def decode_program(params: Any) -> QuantumProgram:
    """The `QuantumProgram` of stored `params`; raises `CircuitError` for bad input."""
    if not isinstance(params, dict):
        raise CircuitError("params must be an object holding a quantum_program")
    version = params.get("schema_version")
    if version != SCHEMA_VERSION:
        raise CircuitError(
            f"unsupported executor params schema_version {version!r}; use {SCHEMA_VERSION!r}"
        )
    try:
        model = ParamsModel.model_validate(params)
    except pydantic.ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()[:5]
        )
        raise CircuitError(f"invalid quantum program: {problems}") from None
    try:
        program, _options = quantum_program_from_2_0(model)
        for item in program.items:
            if isinstance(item, SamplexItem):
                item.samplex.finalize()  # a samplex read from JSON is not finalized yet
    except Exception as error:  # QPY, samplex and tensor decoders raise their own types
        raise CircuitError(f"the quantum program could not be decoded: {one_line(error)}") from None
    return program


def inspect(params: Any, limits: Limits) -> Inspection:
    """Check a program against `limits` and decode it (run it in the sandbox).

    The item count is checked on the JSON, before anything is decoded; circuits,
    shots and the elements of each item (bindings times randomizations) after. A
    program's executions are its shots times the elements of all its items.
    """
    program_json = params.get("quantum_program") if isinstance(params, dict) else None
    raw_items = program_json.get("items") if isinstance(program_json, dict) else None
    if isinstance(raw_items, list) and len(raw_items) > limits.pubs:
        raise CircuitError(
            f"the program has {len(raw_items)} items; at most {limits.pubs} are allowed"
        )
    program = decode_program(params)
    if not program.items:
        raise CircuitError("the program has no items to run")
    if program.meas_level != "classified":
        raise CircuitError(
            f"meas_level {program.meas_level!r} is not supported; simulators return 'classified'"
        )
    if program.shots > limits.shots:
        raise CircuitError(
            f"the program has {program.shots} shots; at most {limits.shots} are allowed"
        )
    for index, item in enumerate(program.items):
        _check_item(index, item, limits)
    executions = program.shots * sum(item.size() for item in program.items)
    if executions > limits.executions:
        raise CircuitError(
            f"the program needs {executions} executions (shots times item elements); "
            f"at most {limits.executions} are allowed"
        )
    widest = max(item.circuit.num_qubits for item in program.items)
    return Inspection(widest, executions)


def _check_item(index: int, item: Any, limits: Limits) -> None:
    try:
        check_size(item.circuit, limits)
    except CircuitError as error:
        raise CircuitError(f"item {index}: {error.message}") from None
    if not item.circuit.cregs:
        raise CircuitError(f"item {index}: the circuit has no classical register; add measurements")
    if item.size() > limits.parameter_sets:
        raise CircuitError(
            f"item {index} has {item.size()} elements (parameter sets times randomizations); "
            f"at most {limits.parameter_sets} are allowed"
        )


def run(program: QuantumProgram, *, backend_options: dict[str, Any]) -> str:
    """Run `program` on Aer; the `QuantumProgramResult` as the client's v2.0 result JSON."""
    started = datetime.now(UTC)
    result = run_quantum_program(AerSimulator(**backend_options), program, SimulatorOptions())
    stopped = datetime.now(UTC)
    return encode_result(result, program, started=started, stopped=stopped)


def encode_result(
    result: QuantumProgramResult, program: QuantumProgram, *, started: datetime, stopped: datetime
) -> str:
    """The result in the executor's v2.0 result schema, which the client decodes.

    The whole program ran as one chunk, so the timing has a single span covering every item.
    """
    parts = [
        ChunkPart(
            idx_item=index,
            size=item.size(),
            permutation=list(range(len(item.shape))),
            element_range=(0, item.size(), 1),
        )
        for index, item in enumerate(program.items)
    ]
    model = QuantumProgramResultModel(
        data=[
            QuantumProgramResultItemModel(
                results={
                    name: CompressedTensorModel.from_numpy(np.asarray(value))
                    for name, value in item_result.items()
                },
                metadata=ItemMetadataModel(),
            )
            for item_result in result
        ],
        metadata=MetadataModel(chunk_timing=[ChunkSpan(start=started, stop=stopped, parts=parts)]),
        passthrough_data=passthrough_data_to_2_0(result.passthrough_data),
        semantic_role=program._semantic_role,
    )
    return model.model_dump_json()
