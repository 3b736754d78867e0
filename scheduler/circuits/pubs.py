"""A job's PUBs: decoded from its `params`, checked against the limits, counted.

`inspect` is what a submission runs in the decoding sandbox: the PUBs decoded and
checked, and what they imply (the widest circuit, the executions the modeled QPU
time charges).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

from qiskit.primitives.containers import EstimatorPub, SamplerPub
from qiskit_ibm_runtime import RuntimeDecoder

from scheduler.circuits.errors import CircuitError, one_line
from scheduler.circuits.limits import Limits, check_observable_terms, check_size
from scheduler.circuits.params import (
    DEFAULT_PRECISION,
    DEFAULT_SHOTS,
    ESTIMATOR,
    EXECUTOR,
    SAMPLER,
    RunDefaults,
    run_defaults,
)

Pub: TypeAlias = SamplerPub | EstimatorPub


@dataclass(frozen=True)
class Inspection:
    """What a job's checked input implies: its widest circuit and its executions."""

    num_qubits: int
    executions: int


def decode_pubs(program_id: str, params: Any) -> list[Pub]:
    """The PUBs of stored `params`, validated; raises `CircuitError` for bad input."""
    if program_id not in (SAMPLER, ESTIMATOR):
        raise CircuitError(f"program {program_id!r} takes no pubs; use 'sampler' or 'estimator'")
    if not isinstance(params, dict) or not isinstance(params.get("pubs"), list):
        raise CircuitError("params must be an object with a list of pubs")
    if not params["pubs"]:
        raise CircuitError("no pubs to run")
    try:
        raw = json.loads(json.dumps(params["pubs"]), cls=RuntimeDecoder)
    except Exception as error:  # QPY, base64, zlib and numpy all raise their own types
        raise CircuitError(f"pubs could not be decoded: {one_line(error)}") from error
    return [_coerce(program_id, index, item) for index, item in enumerate(raw)]


def _coerce(program_id: str, index: int, item: Any) -> Pub:
    if isinstance(item, list):
        item = tuple(item)
    try:
        if program_id == SAMPLER:
            pub: Pub = SamplerPub.coerce(item)
            if not pub.circuit.cregs:
                raise ValueError(
                    "the circuit has no classical register to sample; add measurements"
                )
        else:
            pub = EstimatorPub.coerce(item)
    except Exception as error:  # coerce raises ValueError, TypeError, QiskitError, ...
        raise CircuitError(f"pub {index}: {one_line(error)}") from error
    return pub


def check_fits(pubs: Iterable[Pub], num_qubits: int) -> None:
    """Raise `CircuitError` when a PUB's circuit is wider than the backend."""
    for pub in pubs:
        if pub.circuit.num_qubits > num_qubits:
            raise CircuitError(
                f"circuit needs {pub.circuit.num_qubits} qubits; backend has {num_qubits}"
            )


def check_width(inspection: Inspection, backend_qubits: int) -> None:
    if inspection.num_qubits > backend_qubits:
        raise CircuitError(
            f"circuit needs {inspection.num_qubits} qubits; backend has {backend_qubits}"
        )


def inspect(program_id: str, params: Any, limits: Limits) -> Inspection:
    """Check a job's `params` against `limits` and decode them (run it in the sandbox).

    Counts are checked on the JSON before anything is decoded; circuits, shots,
    parameter sets and observables after. Raises `CircuitError`.
    """
    if program_id == EXECUTOR:
        from scheduler import quantum_programs  # imports circuits; loaded when first needed

        return quantum_programs.inspect(params, limits)
    raw = params.get("pubs") if isinstance(params, dict) else None
    if isinstance(raw, list) and len(raw) > limits.pubs:
        raise CircuitError(f"the job has {len(raw)} PUBs; at most {limits.pubs} are allowed")
    pubs = decode_pubs(program_id, params)
    defaults = run_defaults(program_id, params)
    for index, pub in enumerate(pubs):
        _check_pub(index, pub, defaults, limits)
    executions = count_executions(program_id, pubs, defaults.shots, defaults.precision)
    if executions > limits.executions:
        raise CircuitError(
            f"the job needs {executions} executions (shots times parameter sets); "
            f"at most {limits.executions} are allowed"
        )
    return Inspection(max(pub.circuit.num_qubits for pub in pubs), executions)


def _check_pub(index: int, pub: Pub, defaults: RunDefaults, limits: Limits) -> None:
    try:
        check_size(pub.circuit, limits)
    except CircuitError as error:
        raise CircuitError(f"pub {index}: {error.message}") from None
    counts = [("parameter value sets", pub.parameter_values.size, limits.parameter_sets)]
    if isinstance(pub, SamplerPub):
        counts.append(("shots", pub.shots or defaults.shots, limits.shots))
    else:
        counts.append(("observables", pub.observables.size, limits.observables))
    for what, have, most in counts:
        if have > most:
            raise CircuitError(f"pub {index} has {have} {what}; at most {most} are allowed")
    if isinstance(pub, EstimatorPub):
        check_observable_terms(index, pub, limits)


def count_executions(
    program_id: str,
    pubs: Iterable[Pub],
    default_shots: int = DEFAULT_SHOTS,
    default_precision: float = DEFAULT_PRECISION,
) -> int:
    """Shots times parameter sets over all PUBs: what the modeled QPU time charges.

    An estimator PUB of precision p is charged as ceil(1 / p^2) shots per parameter set.
    """
    total = 0
    for pub in pubs:
        if isinstance(pub, SamplerPub):
            shots = pub.shots or default_shots
        else:
            shots = precision_shots(pub.precision or default_precision, default_shots)
        total += shots * pub.parameter_values.size
    return total


def precision_shots(precision: float, default_shots: int = DEFAULT_SHOTS) -> int:
    """The shots an estimator precision stands for: ceil(1 / precision^2).

    The tolerance keeps a precision of 1/sqrt(n) at n shots despite rounding.
    """
    return math.ceil(1 / precision**2 - 1e-6) if precision > 0 else default_shots
